"""A plain Django view (not DRF) whose database fails: handler500 answers for it."""

from django.urls import path

from tests.billing.database_failures import fail_database


def plain_view(request, kind: str):
    fail_database(kind)


def broken_view(request):
    msg = "a bug, not the database"
    raise ValueError(msg)


urlpatterns = [
    path("plain/<str:kind>/", plain_view),
    path("broken/", broken_view),
]

handler500 = "billing.exception_handler.server_error"
