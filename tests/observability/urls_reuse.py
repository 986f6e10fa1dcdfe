"""The test URLs plus a view whose transaction rolls back, logged by @log_api_request alone."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import include, path

from billing.logging_utils import log_api_request
from tests.urls import handler404, handler500

__all__ = ["handler404", "handler500", "urlpatterns"]


@transaction.atomic
@log_api_request
def rolled_back_view(request):
    """Writes a row, then fails: the atomic block around the whole view rolls the row back."""
    get_user_model().objects.create_user(request.GET["username"])
    msg = "the view fails after writing: its transaction rolls back"
    raise ValueError(msg)


urlpatterns = [
    path("t/rolled-back/", rolled_back_view),
    path("", include("tests.urls")),
]
