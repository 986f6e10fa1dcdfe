"""The project's URLs plus two API views the browser test needs: a slow one and a failing one."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from django.urls import include, path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from billing.logging_utils import log_performance_metric
from config.urls import handler400, handler403, handler404, handler500
from tests.polling import poll_until

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

logger = logging.getLogger("billing.views")


def wait_for_the_ledger(request) -> None:
    """`?until=<path>`: until the test creates that file (an event the test controls, at most
    60 s); else `?s=<seconds>` (at most 2): slow work whose length only has to be at least
    that, never at most (a loaded machine makes it longer, never shorter)."""
    if "until" in request.GET:
        release = Path(request.GET["until"])
        poll_until(release.exists, timeout=60, interval=0.02)
    else:
        time.sleep(min(float(request.GET.get("s", "0.4")), 2.0))


@api_view(["GET"])
@permission_classes([IsAuthenticated])
def slow_report(request):
    """A report whose database call is slow: the gap the timeline should show."""
    logger.info("report: querying the ledger")
    started = time.perf_counter()
    wait_for_the_ledger(request)
    elapsed = time.perf_counter() - started
    log_performance_metric(metric_name="ledger_query", value=elapsed, unit="seconds")
    logger.info("report: ledger answered")
    return Response({"rows": 0})


@api_view(["POST"])
@permission_classes([IsAuthenticated])
def failing_charge(request):
    """A charge that fails inside our code: a 500 with a traceback in the errors file."""
    logger.info("charge: calling the gateway")
    msg = "gateway answered garbage"
    raise ValueError(msg)


urlpatterns = [
    path("t/slow-report/", slow_report),
    path("t/failing-charge/", failing_charge),
    path("", include("config.urls")),
]
