"""Read a Django request for the log: its ID, client, method, path, query, agent and user.

Every value here is the client's to choose, so each is checked (ID, method, IP) or masked
(path, query, user agent, username) before it is capped, and capped before it is logged:
a card number cut in half by a cap would leave its first digits behind. The middleware,
the decorator and the event helpers all read requests through this module.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from django.http import HttpRequest

from observability.compat import resolved_user
from observability.conf import obs_settings, on_reload
from observability.masking.escaping import PATH_LIMIT, QUERY_LIMIT, USER_AGENT_LIMIT, USERNAME_LIMIT
from observability.masking.percent import holds_card
from observability.masking.redaction import get_redactor
from observability.tracing.client_ip import (
    Address,
    client_address,
    from_trusted_proxy,
    get_client_ip,
)
from observability.tracing.context import EMPTY, bind_fields
from observability.tracing.routes import readable_route
from observability.tracing.tracecontext import (
    TraceParent,
    parse_traceparent,
    read_tracestate,
)

REQUEST_ID_MAX = 128
# Starts with a letter or digit, so an ID never equals the "-" the files use for "none".
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
# An HTTP method as servers send it (Django upper-cases it); anything else is not logged.
_METHOD = re.compile(r"[A-Z][A-Z_\-]{0,23}")
INVALID_METHOD = "INVALID"

_header_keys: dict[str, str] = {}


@on_reload
def _forget_header_keys() -> None:
    _header_keys.clear()


def meta_key(header: str) -> str:
    """The WSGI environ key of an HTTP header: "X-Request-ID" -> "HTTP_X_REQUEST_ID"."""
    key = _header_keys.get(header)
    if key is None:
        key = _header_keys[header] = "HTTP_" + header.upper().replace("-", "_")
    return key


def valid_request_id(value: str) -> bool:
    """The allowlist, checked before anything else reads the value; then no secret inside."""
    if len(value) > REQUEST_ID_MAX or _REQUEST_ID.fullmatch(value) is None:
        return False
    # An allowed ID can still be a card number or a JWT: it would then be written on
    # every record of the request. Such an ID is refused, not masked (masked, it would no
    # longer match the response header the client holds).
    return get_redactor().text(value) == value


def _trusted(meta: dict[str, Any], trust: bool | str) -> bool:
    """Whether to believe what a client sent, by a TRUST_INCOMING_* setting's value."""
    if trust == "proxies":
        return from_trusted_proxy(meta, obs_settings.TRUSTED_PROXIES)
    return bool(trust)


def incoming_request_id(meta: dict[str, Any]) -> tuple[str | None, int]:
    """The client's request ID if it is trusted and valid, and the length of a refused one."""
    settings = obs_settings
    incoming = meta.get(meta_key(settings.REQUEST_ID_HEADER))
    if incoming is None or not _trusted(meta, settings.TRUST_INCOMING_REQUEST_ID):
        return None, 0
    if valid_request_id(incoming):
        return incoming, 0
    return None, len(incoming)


def incoming_trace(meta: dict[str, Any]) -> tuple[TraceParent | None, str | None, str, int]:
    """The caller's trace (a valid, trusted `traceparent`), its `tracestate` (the valid
    members we may pass on), why a valid traceparent was refused ("" when none was), and
    how many `tracestate` members were dropped for holding what the masker would change.

    A trace ID is written on every record of the request and sent back in `traceresponse`.
    So from a client we do not trust, one whose trace ID or parent span ID holds a card
    number (32 decimal digits are valid hex) is refused, and a new trace starts. We trust
    a peer when TRUST_INCOMING_TRACEPARENT is "proxies" and the peer is one of
    TRUSTED_PROXIES: its traces are always adopted. With True, anyone may send one, and
    nobody is known to be a peer of ours, so every traceparent is checked.
    """
    header = meta.get("HTTP_TRACEPARENT")
    trust = obs_settings.TRUST_INCOMING_TRACEPARENT
    if header is None or not _trusted(meta, trust):
        return None, None, "", 0
    parent = parse_traceparent(header)
    if parent is None:
        return None, None, "", 0
    if trust != "proxies" and (holds_card(parent.trace_id) or holds_card(parent.parent_id)):
        return None, None, "card_number", 0
    tracestate, dropped = read_tracestate(meta.get("HTTP_TRACESTATE"))
    return parent, tracestate, "", dropped


_COMMON_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_of(django_request: Any) -> str:
    method = getattr(django_request, "method", None)
    if method in _COMMON_METHODS:
        return method  # type: ignore[no-any-return]
    if not method:
        return EMPTY
    return method if _METHOD.fullmatch(method) else INVALID_METHOD


def request_fields(request: Any) -> dict[str, Any]:
    """The context fields a request gives: ip, method, path, and the user when known."""
    # DRF's Request hands attribute reads to Django's: no unwrapping needed to read.
    plain = request
    meta = getattr(plain, "META", {})
    redactor = get_redactor()
    fields: dict[str, Any] = {
        "ip": get_client_ip(meta, obs_settings.TRUSTED_PROXIES),
        "method": method_of(plain),
        "path": redactor.text(getattr(plain, "path", EMPTY), PATH_LIMIT),
    }
    user = known_user(request)
    if user is not None:
        fields.update(user_fields(user))
    return fields


def request_context(request: Any, request_id: str, trace_id: str, span_id: str) -> dict[str, Any]:
    """A request's whole context: every CONTEXT_FIELDS key, in its order (the lifecycle sets
    this dict as the context as it is, without a copy): the IDs, the user when known (None
    otherwise), and what request_fields() reads."""
    meta = getattr(request, "META", {})
    user = known_user(request)
    user_id, username = (None, None) if user is None else _user_values(user)
    return {
        "request_id": request_id,
        "user_id": user_id,
        "username": username,
        "ip": get_client_ip(meta, obs_settings.TRUSTED_PROXIES),
        "method": method_of(request),
        "path": get_redactor().text(getattr(request, "path", EMPTY), PATH_LIMIT),
        "trace_id": trace_id,
        "span_id": span_id,
    }


def client_address_of(request: HttpRequest) -> Address | None:
    """The client's IP address, as TRUSTED_PROXIES reads it; None when there is none to tell.

    Django's request or DRF's (which hands `META` over). Unmasked, for a key such as a
    throttle's count per client; never for output: every record carries it masked (`ip=`).
    """
    return client_address(request.META, obs_settings.TRUSTED_PROXIES)


def bind_user(user: Any) -> None:
    """Bind an authenticated user's id and name; reads attributes only, never queries."""
    if getattr(user, "pk", None) is not None:
        bind_fields(user_fields(user))


def user_fields(user: Any) -> dict[str, Any]:
    """user_id and username of an authenticated user; reads attributes, never queries."""
    user_id, username = _user_values(user)
    return {"user_id": user_id, "username": username}


def _user_values(user: Any) -> tuple[Any, str]:
    username = user.get_username() if hasattr(user, "get_username") else str(user.pk)
    return user.pk, get_redactor().text(str(username), USERNAME_LIMIT)


def known_user(request: Any) -> Any:
    """The request's authenticated user if already resolved; None rather than authenticating."""
    user = resolved_user(request)
    if user is not None and getattr(user, "is_authenticated", False):
        return user
    return None


def started_details(request: Any, path: str) -> tuple[str, dict[str, Any]]:
    """The started line's shown path (with the masked query) and its query/user_agent fields."""
    settings = obs_settings
    plain = request  # DRF's Request hands attribute reads to Django's
    meta = plain.META
    extra: dict[str, Any] = {}
    if settings.LOG_QUERY_STRING:
        query = meta.get("QUERY_STRING", "")
        if query:
            redactor = get_redactor()
            extra["query"] = redactor.query_string(query, QUERY_LIMIT)
            # Path and query masked as one text: a card number can straddle the "?".
            path = redactor.url(plain.path, query, PATH_LIMIT + QUERY_LIMIT)
    if settings.LOG_USER_AGENT:
        extra["user_agent"] = get_redactor().text(meta.get("HTTP_USER_AGENT", ""), USER_AGENT_LIMIT)
    return path, extra


def route_of(request: Any) -> tuple[str, str]:
    """The URL pattern that matched and its view, e.g. ("api/v1/payments/<int:pk>/", "...").

    Never the raw path: a route groups requests by endpoint with a bounded set of values
    (metrics labels, listings). A `re_path()` regex is shown readably, once per pattern
    (`requests/<request_id>/`, observability.tracing.routes). ("-", "-") when nothing matched (a
    404) or not yet.
    """
    match = getattr(request, "resolver_match", None)  # DRF's Request hands it over too
    if match is None:
        return EMPTY, EMPTY
    func = match.func
    try:
        name = _view_names.get(func)
    except TypeError:  # an unhashable callable
        name = None
    if name is None:
        view = getattr(func, "view_class", None) or getattr(func, "cls", None) or func
        name = f"{getattr(view, '__module__', '')}.{getattr(view, '__qualname__', '')}".strip(".")
        name = name or EMPTY
        if len(_view_names) < 4096:  # one a view; a URLconf's views are few
            with contextlib.suppress(TypeError):
                _view_names[func] = name
    return (readable_route(match.route) if match.route else EMPTY), name


_view_names: dict[Any, str] = {}


def response_size(response: Any) -> int | None:
    """The body's size in bytes; None while unknown (streaming, a DRF Response not rendered)."""
    if getattr(response, "streaming", False) or not getattr(response, "is_rendered", True):
        return None
    content = getattr(response, "content", None)  # the body itself: cheaper than a header
    if content is not None:
        return len(content)
    length = response.get("Content-Length") if hasattr(response, "get") else None
    return int(length) if length is not None and length.isdigit() else None
