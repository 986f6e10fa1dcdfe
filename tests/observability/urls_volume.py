"""The test URLs plus a view that blocks until the test lets it go (a request in flight)."""

import threading

from django.http import HttpResponse
from django.urls import include, path

from tests.polling import DEADLINE
from tests.urls import handler404, handler500

__all__ = ["handler404", "handler500", "release", "running", "urlpatterns"]

running = threading.Event()
release = threading.Event()


def blocking_view(request):
    running.set()
    release.wait(2 * DEADLINE)  # the test releases it; bounded all the same
    return HttpResponse("done")


urlpatterns = [
    path("t/block/", blocking_view),
    path("", include("tests.urls")),
]
