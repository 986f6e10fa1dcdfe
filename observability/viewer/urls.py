"""The trace viewer's URLs: include them where staff should find them (this project: /ops/)."""

from django.urls import path, re_path

from observability.viewer import overview, tasks, views

app_name = "observability_viewer"

urlpatterns = [
    path("", overview.root, name="root"),
    path("overview/", overview.overview_page, name="overview"),
    path("requests/", views.request_list, name="requests"),
    path("tasks/", tasks.task_list, name="tasks"),
    re_path(
        r"^requests/(?P<request_id>[A-Za-z0-9._:-]{1,128})/$",
        views.request_detail,
        name="request",
    ),
]
