"""The overview page: the last hour or day from the log files (`logtrace.overview`), no Prometheus.

Staff only, with the listing's headers and its audit: every view writes exactly one
`request_overview_viewed` event (`query_window=`, `query_valid=`, `cached=`, `partial=`).
What it computes is kept CACHE_SECONDS in Django's default cache, keyed by window (and
the directory and threshold it read with), so several staff members and reloads share
one reading of the files across workers; its work is bounded by `BUDGET` whatever the files
hold. A cache that fails costs the cache only: the overview is computed again.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from observability import bind_user
from observability.conf import obs_settings
from observability.logtrace.overview import Budget, overview
from observability.logtrace.tally import Overview
from observability.viewer.access import staff_only
from observability.viewer.headers import secure_headers
from observability.viewer.views import _audit, _query, _refused, log_directory

#: The windows offered: parameter -> (label, minutes).
WINDOWS = {"1h": ("last hour", 60), "1d": ("last day", 24 * 60)}
DEFAULT_WINDOW = "1h"
CACHE_SECONDS = 30
BUDGET = Budget()
_log = logging.getLogger(__name__)


def cache_key(window: str) -> str:
    directory = str(log_directory().resolve())
    threshold = obs_settings.SLOW_REQUEST_THRESHOLD
    digest = hashlib.sha256(f"{directory}\0{threshold}".encode()).hexdigest()[:24]
    return f"observability:overview:{window}:{digest}"


def computed(window: str) -> tuple[Overview, bool]:
    """The window's overview, and whether it came from the cache."""
    key = cache_key(window)
    try:
        found = cache.get(key)
    except Exception:  # any backend's error: compute it instead
        _log.warning("overview cache unreadable; computing", exc_info=True)
        found = None
    if isinstance(found, Overview):
        return found, True
    summary = overview(
        log_directory(),
        minutes=WINDOWS[window][1],
        threshold=obs_settings.SLOW_REQUEST_THRESHOLD,
        budget=BUDGET,
        base=str(getattr(settings, "BASE_DIR", "") or "") or None,
    )
    try:
        cache.set(key, summary, CACHE_SECONDS)
    except Exception:  # any backend's error: the next view computes it again
        _log.warning("overview cache unwritable", exc_info=True)
    return summary, False


def _series(values: list[float]) -> str:
    """Numbers only, for the chart's data attributes: `3,0,12.5`."""
    return ",".join(f"{value:.6g}" for value in values)


@secure_headers
def root(request: HttpRequest) -> HttpResponse:
    """The viewer's root leads to its overview (which sends anyone but staff to the login)."""
    return redirect("observability_viewer:overview")


@secure_headers
@staff_only
def overview_page(request: HttpRequest) -> HttpResponse:
    """Requests, errors and slow requests a minute; top routes; error groups; security."""
    bind_user(request.user)
    refused = _refused(request, ("window",))
    if refused is not None:
        return refused
    window = request.GET.get("window", DEFAULT_WINDOW)
    valid = window in WINDOWS
    summary, cached = computed(window) if valid else (None, False)
    details: dict[str, Any] = {**_query(request, ("window",)), "query_valid": valid}
    if summary is not None:
        details["cached"] = cached
        if summary.partial:
            details["partial"] = True
    _audit("request_overview_viewed", details)
    context: dict[str, Any] = {"windows": WINDOWS, "window": window, "summary": summary}
    if summary is not None:
        context.update(
            label=WINDOWS[window][0],
            since=window,
            series={
                "requests": _series(summary.requests),
                "errors": _series(summary.errors),
                "slow": _series(summary.slow),
            },
            start_ms=int(summary.start.timestamp() * 1000),
            cache_seconds=CACHE_SECONDS,
        )
    return render(
        request,
        "observability/viewer/overview.html",
        context,
        status=200 if valid else 400,
    )
