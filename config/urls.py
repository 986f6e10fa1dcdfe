"""Root URLs: the API under /api/v1/, health, metrics, schema, docs, admin, trace viewer."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from billing.admin import admin_login
from billing.views import HealthView

urlpatterns = [
    path("health/", HealthView.as_view(), name="health"),
    path("", include("observability.metrics_urls")),  # /metrics, for Prometheus only
    path("api/v1/", include("billing.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # Before the admin's own URLs: its login page, throttled and audited (billing.admin).
    path("admin/login/", admin_login),
    path("admin/", admin.site.urls),
    path("ops/", include("observability.viewer.urls")),
]

handler400 = "billing.exception_handler.bad_request"
handler403 = "billing.exception_handler.permission_denied"
handler404 = "billing.exception_handler.not_found"
handler500 = "billing.exception_handler.server_error"
