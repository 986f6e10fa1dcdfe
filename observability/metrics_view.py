"""GET /metrics: the Prometheus exposition, for the monitoring system only.

Served to a client whose address is in METRICS_ALLOWED_IPS (default: loopback), or that
sends `Authorization: Bearer <METRICS_TOKEN>`. Anyone else gets the same 404 as any
unknown URL, and a `metrics_access_refused` security event is logged.

Behind a reverse proxy on the same host every client looks like 127.0.0.1: set
TRUSTED_PROXIES (the client is then read from X-Forwarded-For), or keep /metrics off
the proxy.
"""

from __future__ import annotations

import hmac
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed

from observability.conf import obs_settings
from observability.events import log_security_event
from observability.monitoring.metrics import render
from observability.tracing.client_ip import address_in, client_address


def bearer_matches(meta: dict[str, Any], token: str | None) -> bool:
    """Whether the Authorization header carries exactly `token` (compared in constant time)."""
    if not token:
        return False
    scheme, _, value = str(meta.get("HTTP_AUTHORIZATION", "")).partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode("utf-8", "replace"), token.encode("utf-8")
    )


def refusal(request: HttpRequest) -> str | None:
    """Why this client may not read the metrics, or None when it may."""
    settings = obs_settings
    if not settings.METRICS:
        return "metrics_off"
    meta = request.META
    # The address itself, not the masked text the logs show.
    client = client_address(meta, settings.TRUSTED_PROXIES)
    if address_in(client, settings.METRICS_ALLOWED_IPS):
        return None
    if bearer_matches(meta, settings.METRICS_TOKEN):
        return None
    return "wrong_token" if "HTTP_AUTHORIZATION" in meta else "address_not_allowed"


def refused(request: HttpRequest) -> bool:
    """Whether this client may not read the metrics; a refusal (metrics on) is audited as a
    `metrics_access_refused` security event. The web's view and the worker's port ask it."""
    reason = refusal(request)
    if reason is not None and reason != "metrics_off":
        log_security_event(
            request=request,
            event_type="metrics_access_refused",
            severity="warning",
            details={"reason": reason},
        )
    return reason is not None


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The metrics of every worker process, or a 404 for whoever may not read them."""
    if refused(request):
        raise Http404
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    body, content_type = render(request.headers.get("Accept", ""), request)
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
