"""Flag a request that reuses what another request sent: its request ID, its traceparent.

The memory is observability.http.seen_ids (a cache every worker shares), each client held to its
quota (observability.http.id_quota). A caller makes a new span for each call it makes, so the
same (trace ID, parent span ID) sent twice is a replayed or forged `traceparent` (or a
retry that resent its headers): `traceparent_reused`, like `request_id_reused`, names the
first use's span, whatever sampling kept of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from observability.compat import django_request
from observability.conf import obs_settings
from observability.events import log_security_event
from observability.http.seen_ids import seen_ids
from observability.tracing.client_ip import client_address, client_group


def check_reuse(request: Any, fields: Mapping[str, Any], incoming_id: bool, parent_id: str) -> None:
    """Look the request's incoming ID and adopted traceparent up (and remember them)."""
    meta = django_request(request).META
    client = client_group(client_address(meta, obs_settings.TRUSTED_PROXIES))
    if incoming_id:
        seen_ids.check(fields["request_id"], fields["span_id"], _flag_reuse, client)
    if parent_id:
        seen = f"traceparent {fields['trace_id']}-{parent_id}"  # never a valid request ID
        seen_ids.check(seen, fields["span_id"], _flag_trace_reuse, client)


def _flag_trace_reuse(first_span_id: str | None) -> None:
    """The request's traceparent (its trace and parent span) was sent before, by any client."""
    if first_span_id is None:
        _flag_reuse(None)
        return
    log_security_event(
        event_type="traceparent_reused",
        severity="warning",
        details={"header": "traceparent", "first_span_id": first_span_id},
    )


def _flag_reuse(first_span_id: str | None) -> None:
    """The request reuses an incoming ID another request (in any worker) used first; or
    (None) its client is past SEEN_IDS_PER_CLIENT, and its ID was not remembered."""
    if first_span_id is None:
        log_security_event(
            event_type="request_id_quota_exceeded",
            severity="warning",
            details={
                "header": obs_settings.REQUEST_ID_HEADER,
                "quota": obs_settings.SEEN_IDS_PER_CLIENT,
            },
        )
        return
    log_security_event(
        event_type="request_id_reused",
        severity="warning",
        details={"header": obs_settings.REQUEST_ID_HEADER, "first_span_id": first_span_id},
    )
