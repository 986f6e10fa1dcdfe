"""Staff pages: search the requests in the logs, and draw one request's story.

Only Django's staff session opens them (the admin's login; a JWT alone does not). They read
`settings.LOG_BASE_DIR` and nothing the request names; every value shown comes from the logs,
so it is attacker-controlled text, escaped by the template engine and never marked safe.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from observability import bind_user, log_security_event
from observability.conf import obs_settings
from observability.logtrace import search, story
from observability.viewer.forms import RequestSearchForm
from observability.viewer.headers import secure_headers
from observability.viewer.links import admin_links
from observability.viewer.timeline import field_values, marks

PAGE_SIZE = 50
MAX_PAGE = 1000
LANES = ("requests", "general", "errors", "security", "debug")


def log_directory() -> Path:
    return Path(getattr(settings, "LOG_BASE_DIR", "/tmp"))


def _page_number(request: HttpRequest) -> int:
    raw = request.GET.get("page", "1")
    number = int(raw) if raw.isdigit() and len(raw) <= 6 else 1
    return min(max(number, 1), MAX_PAGE)


@secure_headers
@staff_member_required
def request_list(request: HttpRequest) -> HttpResponse:
    """Requests matching the filters, newest first, PAGE_SIZE a page."""
    bind_user(request.user)  # the lifecycle lines of this page name the staff user
    form = RequestSearchForm(request.GET)
    number = _page_number(request)
    page = None
    if form.is_valid():
        page = search(
            log_directory(), form.filters(), offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
        )
        filters = form.active_filters()
        if filters:
            log_security_event(event_type="request_log_searched", severity="info", details=filters)
    context = {
        "form": form,
        "page": page,
        "number": number,
        "threshold": obs_settings.SLOW_REQUEST_THRESHOLD,
    }
    return render(
        request,
        "observability/viewer/request_list.html",
        context,
        status=200 if page is not None else 400,
    )


@secure_headers
@staff_member_required
def request_detail(request: HttpRequest, request_id: str) -> HttpResponse:
    """One request's records from every file on one time axis, and below it as a list."""
    bind_user(request.user)
    raw_at = request.GET.get("at", "")
    at_ms = int(raw_at) if raw_at.isdigit() and len(raw_at) <= 16 else None
    found = story(log_directory(), request_id)
    log_security_event(
        event_type="request_trace_viewed",
        severity="info",
        details={"viewed_request_id": request_id, "found": found is not None},
    )
    if found is None:
        return render(
            request,
            "observability/viewer/request_missing.html",
            {"request_id": request_id},
            status=404,
        )
    chosen = found.nearest(at_ms)  # one of the requests that shared the ID, by its start
    row, group = found.requests[chosen]
    records = marks(group, row.first)
    present = {mark.record.lane for mark in records}
    lanes = [lane for lane in LANES if lane in present] + sorted(present - set(LANES))
    threshold = obs_settings.SLOW_REQUEST_THRESHOLD
    span_ms = max((mark.offset_ms for mark in records), default=0.0)
    if row.seconds is not None:
        span_ms = max(span_ms, row.seconds * 1000)
    context = {
        "row": row,
        "records": records,
        "occurrences": [summary for summary, _ in found.requests],
        "chosen": chosen,
        "lanes": lanes,
        "span_ms": span_ms,
        "threshold": threshold,
        "threshold_ms": threshold * 1000,
        "admin_links": admin_links(field_values(group)),
    }
    return render(request, "observability/viewer/request_detail.html", context)
