"""The trace viewer's URLs: include them where staff should find them (this project: /ops/)."""

from django.urls import path, re_path
from django.views.generic import RedirectView

from observability.viewer import overview, views
from observability.viewer.headers import secure_headers

app_name = "observability_viewer"

urlpatterns = [
    # The viewer's root is its overview (which sends anyone but staff to the login).
    path("", secure_headers(RedirectView.as_view(pattern_name="observability_viewer:overview"))),
    path("overview/", overview.overview_page, name="overview"),
    path("requests/", views.request_list, name="requests"),
    re_path(
        r"^requests/(?P<request_id>[A-Za-z0-9._:-]{1,128})/$",
        views.request_detail,
        name="request",
    ),
]
