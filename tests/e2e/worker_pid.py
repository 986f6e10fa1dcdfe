"""Test-only middleware: each response names the worker process that served it.

With it an end-to-end test knows which of gunicorn's workers answered each request, so it
can send one request ID until two different workers have seen it (gunicorn hands each
connection to whichever worker accepts it first; nothing in the app says which).
"""

from __future__ import annotations

import os
from typing import Any

PID_HEADER = "X-Worker-PID"


class WorkerPidMiddleware:
    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        response = self.get_response(request)
        response[PID_HEADER] = str(os.getpid())
        return response
