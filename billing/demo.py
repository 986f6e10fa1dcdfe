"""`manage.py seed_demo --traffic` (`make demo`): requests worth exploring in the logs.

Each goes through the whole stack in this process (Django's test client: the middleware,
DRF, the services, the real log files under LOG_BASE_DIR), so the trace viewer and
`logtrace` show them as they would show a server's:

- a payment that succeeds, one that is declined (402), a refund refused (400);
- a slow payment (the sandbox gateway made slower than SLOW_REQUEST_THRESHOLD);
- a failed request with its traceback (the sandbox gateway made to raise: a 500);
- a burst of failed logins from one address (401s, then 429s: login_failed,
  login_throttled, and a flood summary when they pass FLOOD_LIMIT).

The gateway is changed for this process only, for one request each; nothing else is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.test import Client

from billing import gateway
from observability.conf import obs_settings

DEMO_CLIENT = "203.0.113.66"  # the failed logins' address (TEST-NET-3): alice's own stays free
USER = ("alice", "alice-demo-pass")


@contextmanager
def _patched(name: str, value: Any) -> Iterator[None]:
    original = getattr(gateway, name)
    setattr(gateway, name, value)
    try:
        yield
    finally:
        setattr(gateway, name, original)


def _gateway_down(**kwargs: Any) -> gateway.ChargeResult:
    msg = "sandbox gateway: connection pool exhausted (a failure made by `make demo`)"
    raise RuntimeError(msg)


def run_traffic() -> list[tuple[str, int, str]]:
    """Make the requests; return (what, status, request ID) for each one worth opening."""
    client = Client(raise_request_exception=False, HTTP_USER_AGENT="make-demo")
    response = client.post(
        "/api/v1/auth/token/",
        {"username": USER[0], "password": USER[1]},
        content_type="application/json",
    )
    auth = {"Authorization": f"Bearer {response.json()['access']}"}
    made: list[tuple[str, int, str]] = []

    def pay(what: str, method: str, amount: str = "49.00") -> Any:
        response = client.post(
            "/api/v1/payments/",
            {"amount": amount, "currency": "USD", "payment_method": method},
            content_type="application/json",
            headers=auth,
        )
        made.append((what, response.status_code, response["X-Request-ID"]))
        return response

    paid = pay("a payment", "pm_card_visa").json()["id"]
    pay("a declined payment", "pm_card_declined")
    refused = client.post(
        f"/api/v1/payments/{paid}/refund/",
        {"amount": "500.00", "reason": "more than was paid"},
        content_type="application/json",
        headers=auth,
    )
    made.append(("a refused refund", refused.status_code, refused["X-Request-ID"]))
    slow = float(obs_settings.SLOW_REQUEST_THRESHOLD) + 0.3
    with _patched("DELAY", slow):
        pay("a slow payment", "pm_card_visa", "19.00")
    with _patched("charge", _gateway_down):
        pay("a failed request with its traceback", "pm_card_visa", "29.00")
    made.append(_failed_logins(client))
    return made


def _failed_logins(client: Client, attempts: int = 8) -> tuple[str, int, str]:
    """Wrong passwords for alice from one address: 401s until the throttle answers 429."""
    status, request_id = 0, ""
    for n in range(attempts):
        response = client.post(
            "/api/v1/auth/token/",
            json.dumps({"username": USER[0], "password": f"guess-{n}"}),
            content_type="application/json",
            REMOTE_ADDR=DEMO_CLIENT,
        )
        status, request_id = response.status_code, response["X-Request-ID"]
    return (f"a burst of {attempts} failed logins from {DEMO_CLIENT}", status, request_id)


def hints(made: list[tuple[str, int, str]], base_url: str, say: Callable[[str], None]) -> None:
    say("Demo requests (lines reach the files a moment after each response):")
    for what, status, request_id in made:
        say(f"  {what}: {status}  {base_url}/ops/requests/{request_id}/")
    say(f"  failed logins: {base_url}/ops/requests/?ip={DEMO_CLIENT}")
    say("  or in a shell: logtrace <request id>, logtrace --errors, logtrace --slow")
