"""Staff page: the newest failed and retried background tasks, each linked to its request."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from observability import bind_user
from observability.logtrace.tasks import recent_outcomes
from observability.viewer.access import staff_only
from observability.viewer.headers import secure_headers
from observability.viewer.views import _audit, _refused, log_directory

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
SHOWN = 100


@secure_headers
@staff_only
def task_list(request: HttpRequest) -> HttpResponse:
    """Failed and retried tasks, newest first (at most SHOWN; a bounded read of the files)."""
    bind_user(request.user)
    refused = _refused(request, ())
    if refused is not None:
        return refused
    records, partial = recent_outcomes(log_directory(), limit=SHOWN)
    _audit("task_list_viewed", {"shown": len(records), "partial": partial})
    rows: list[dict[str, Any]] = []
    for record in records:
        request_id = str(record.fields.get("request_id", "-"))
        rows.append(
            {
                "record": record,
                "outcome": record.fields.get("task_event"),
                "task_id": record.fields.get("task_id", "-"),
                "task_name": record.fields.get("task_name", "-"),
                "attempt": record.fields.get("attempt", "-"),
                "request_id": request_id,
                "linked": bool(_REQUEST_ID.fullmatch(request_id)) and request_id != "-",
            }
        )
    context = {"rows": rows, "partial": partial, "shown": SHOWN}
    return render(request, "observability/viewer/task_list.html", context)
