"""Staff pages: search the requests in the logs, and draw one request's story.

Only Django's staff session opens them (the admin's login; a JWT alone does not). They read
`settings.LOG_BASE_DIR` and nothing the request names; every value shown comes from the logs,
so it is attacker-controlled text, escaped by the template engine and never marked safe.

Every page view writes exactly one audit event on the security logger, with the staff
member's own context (their ip, user_id, path) and what they asked for in fields of its own
(`query_user=`, `query_ip=` ... never a context field's name): `request_log_searched` for a
listing (valid or not, filtered or not, any page), `request_trace_viewed` for a story (found
or not). The events pass flood control like every security record: past FLOOD_LIMIT a
window's further views are one summary line with their exact count. A security logger that
would drop them (its level above INFO) closes the viewer: nothing is shown unaudited.

Each staff member opens at most VIEWER_RATE pages (observability.viewer.throttle): past it,
a 429 page before any file is read, with its own audit event (`request_viewer_throttled`).
Each page's work is bounded whatever it asks for: a listing reads at most `BUDGET` (a page
past it is partial and offers to go on), a story only the lines that hold the ID as a whole
value, at most `STORY_LINES` per file; it draws at most RECORDS_SHOWN records and links to
at most OCCURRENCES_SHOWN of the requests that shared the ID.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from observability import bind_user, log_security_event
from observability.conf import obs_settings
from observability.logtrace import search, story, waterfall
from observability.logtrace.listing import Budget
from observability.logtrace.requests import STORY_LINES
from observability.logtrace.tasks import summarise_tasks
from observability.masking.redaction import get_redactor
from observability.viewer import throttle
from observability.viewer.access import staff_only
from observability.viewer.forms import RequestSearchForm
from observability.viewer.headers import secure_headers
from observability.viewer.links import admin_links
from observability.viewer.timeline import field_values, lanes_of, marks

PAGE_SIZE = 50
MAX_PAGE = 1000
LANES = ("requests", "general", "errors", "security", "debug")
#: The most one listing page reads: past it, the page is partial.
BUDGET = Budget()
#: What an audit event keeps of each query parameter (the writer masks and escapes it).
QUERY_VALUE_LIMIT = 256
#: The most records a story page draws: its first ones and its last ones (the end).
RECORDS_SHOWN = 1000
RECORDS_SHOWN_LAST = 200
#: The most of the requests that shared an ID a story page links to: those around it.
OCCURRENCES_SHOWN = 50
_SPAN = re.compile(r"[A-Za-z0-9]{1,64}")
_LISTING_PARAMETERS = (*RequestSearchForm.base_fields, "page")
_STORY_PARAMETERS = ("at", "span")


def log_directory() -> Path:
    """The central root (OBSERVABILITY['LOG_ROOT']) when set, else this host's directory."""
    return Path(obs_settings.LOG_ROOT or getattr(settings, "LOG_BASE_DIR", "/tmp"))


def _page_number(request: HttpRequest) -> int:
    raw = request.GET.get("page", "1")
    number = int(raw) if raw.isdigit() and len(raw) <= 6 else 1
    return min(max(number, 1), MAX_PAGE)


def _query(request: HttpRequest, names: tuple[str, ...]) -> dict[str, str]:
    """The page's query, for its audit event: `query_<name>` for each parameter it reads,
    masked whole, then capped (a card across the cap must not leave its first digits)."""
    redactor = get_redactor()
    return {
        f"query_{name}": redactor.text(request.GET[name], QUERY_VALUE_LIMIT)
        for name in names
        if name in request.GET
    }


def _audit(event_type: str, details: dict[str, Any]) -> None:
    log_security_event(event_type=event_type, severity="info", details=details)


def _refused(request: HttpRequest, names: tuple[str, ...], **asked: str) -> HttpResponse | None:
    """A 503 page when the audit event of this view would not be written; a 429 page (and
    its audit event) when the staff member is past VIEWER_RATE; None to go on."""
    bind_user(request.user)  # the lifecycle lines and the audit event name the staff user
    if not logging.getLogger(obs_settings.SECURITY_LOGGER).isEnabledFor(logging.INFO):
        context = {"logger": obs_settings.SECURITY_LOGGER}
        return render(request, "observability/viewer/unaudited.html", context, status=503)
    over = throttle.refused(request.user.pk)
    if over is None:
        return None
    rate, wait = over
    _audit("request_viewer_throttled", {**asked, **_query(request, names), "retry_after": wait})
    context = {"rate": rate, "retry_after": wait}
    response = render(request, "observability/viewer/throttled.html", context, status=429)
    response["Retry-After"] = str(wait)
    return response


@secure_headers
@staff_only
def request_list(request: HttpRequest) -> HttpResponse:
    """Requests matching the filters, newest first, PAGE_SIZE a page."""
    refused = _refused(request, _LISTING_PARAMETERS)
    if refused is not None:
        return refused
    form = RequestSearchForm(request.GET)
    number = _page_number(request)
    page = None
    valid = form.is_valid()
    if valid:
        page = search(
            log_directory(),
            form.filters(),
            offset=(number - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
            budget=BUDGET,
            before=form.cleaned_data["before"],
        )
    details: dict[str, Any] = {
        **_query(request, _LISTING_PARAMETERS),
        "query_valid": valid,
        "shown": len(page.requests) if page is not None else 0,
    }
    if page is not None and page.partial:
        details["partial"] = True
    _audit("request_log_searched", details)
    context = {
        "form": form,
        "page": page,
        "number": number,
        "threshold": obs_settings.SLOW_REQUEST_THRESHOLD,
        "resume": (
            page.resume.isoformat(timespec="milliseconds")
            if page is not None and page.resume is not None
            else None
        ),
    }
    return render(
        request,
        "observability/viewer/request_list.html",
        context,
        status=200 if page is not None else 400,
    )


@secure_headers
@staff_only
def request_detail(request: HttpRequest, request_id: str) -> HttpResponse:
    """One request's records from every file on one time axis, and below it as a list."""
    refused = _refused(request, _STORY_PARAMETERS, viewed_request_id=request_id)
    if refused is not None:
        return refused
    raw_at = request.GET.get("at", "")
    at_ms = int(raw_at) if raw_at.isdigit() and len(raw_at) <= 16 else None
    raw_span = request.GET.get("span", "")
    span = raw_span if _SPAN.fullmatch(raw_span) else None
    found = story(log_directory(), request_id, limit=STORY_LINES)
    _audit(
        "request_trace_viewed",
        {
            "viewed_request_id": request_id,
            "found": found is not None,
            **_query(request, _STORY_PARAMETERS),
        },
    )
    if found is None:
        return render(
            request,
            "observability/viewer/request_missing.html",
            {"request_id": request_id},
            status=404,
        )
    # one of the requests that shared the ID: by its span ID, else by its start
    chosen = found.by_span(span) if span is not None else None
    if chosen is None:
        chosen = found.nearest(at_ms)
    row, group = found.requests[chosen]
    hidden = max(len(group) - RECORDS_SHOWN, 0)
    if hidden:  # the first ones and the last ones: the request's start and its end
        first = RECORDS_SHOWN - RECORDS_SHOWN_LAST
        group = group[:first] + group[-RECORDS_SHOWN_LAST:]
    records = marks(group, row.first)
    lanes = lanes_of(records, LANES)
    threshold = obs_settings.SLOW_REQUEST_THRESHOLD
    span_ms = max((mark.offset_ms for mark in records), default=0.0)
    if row.seconds is not None:
        span_ms = max(span_ms, row.seconds * 1000)
    bars = waterfall.rows(group, row.first)
    split = waterfall.where_the_time_went(group, (row.seconds or 0.0) * 1000, bars)
    low = max(min(chosen - OCCURRENCES_SHOWN // 2, len(found.requests) - OCCURRENCES_SHOWN), 0)
    shown = found.requests[low : low + OCCURRENCES_SHOWN]
    context = {
        "row": row,
        "records": records,
        "hidden": hidden,
        "hidden_after": RECORDS_SHOWN - RECORDS_SHOWN_LAST - 1,
        "shared_by": len(found.requests),
        "occurrences": [summary for summary, _ in shown],
        "occurrences_before": low,
        "occurrences_after": len(found.requests) - low - len(shown),
        "chosen": chosen - low,
        "reused": found.reused,
        "partial": found.partial,
        "story_lines": STORY_LINES,
        "lanes": lanes,
        "span_ms": span_ms,
        "waterfall": bars,
        "split": split,
        "threshold": threshold,
        "threshold_ms": threshold * 1000,
        "admin_links": admin_links(field_values(group)),
        "tasks": summarise_tasks(group),
    }
    return render(request, "observability/viewer/request_detail.html", context)
