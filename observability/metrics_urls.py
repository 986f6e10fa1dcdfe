"""`path("", include("observability.metrics_urls"))` serves the metrics at /metrics."""

from django.urls import path

from observability.metrics_view import metrics_view

urlpatterns = [path("metrics", metrics_view, name="metrics")]
