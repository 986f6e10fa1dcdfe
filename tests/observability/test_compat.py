"""Each private attribute observability.compat relies on is still there and still means what
it meant: the day a Django, DRF or concurrent-log-handler release changes one, this fails
(instead of the layer silently falling back, or logging the wrong user)."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils.functional import SimpleLazyObject, empty
from rest_framework.request import Request

from observability.compat import (
    django_request,
    resolved_user,
    sentry_client_active,
    set_header,
    set_tracer_provider_of,
)
from observability.output.rotation import BatchRotatingFile


def test_drf_request_wraps_djangos_as_underscore_request():
    plain = RequestFactory().get("/x/")
    wrapped = Request(plain)
    assert wrapped._request is plain
    assert django_request(wrapped) is plain
    assert django_request(plain) is plain


def test_drf_keeps_the_authenticated_user_as_underscore_user():
    plain = RequestFactory().get("/x/")
    wrapped = Request(plain, authenticators=())
    assert resolved_user(wrapped) is None  # nothing authenticated yet: never resolves it
    user = object()
    wrapped.user = user  # what DRF's authentication does
    assert wrapped._user is user
    assert resolved_user(wrapped) is user


def test_a_lazy_user_is_read_only_once_evaluated():
    calls = []

    def load():
        calls.append(1)
        return AnonymousUser()

    request = RequestFactory().get("/x/")
    request.user = SimpleLazyObject(load)
    assert vars(request.user)["_wrapped"] is empty  # Django's marker before evaluation
    assert resolved_user(request) is None
    assert calls == []  # reading it never evaluated it
    assert request.user.is_authenticated is False  # evaluated by someone else
    assert isinstance(resolved_user(request), AnonymousUser)


def test_response_headers_keep_lower_name_to_name_and_value_in_store():
    response = HttpResponse()
    response["X-Probe"] = "1"
    assert type(response.headers._store) is dict
    assert response.headers._store["x-probe"] == ("X-Probe", "1")
    direct = HttpResponse()
    set_header(direct, "X-Request-ID", "req-1")
    assert direct.headers._store["x-request-id"] == ("X-Request-ID", "req-1")
    assert direct["X-Request-ID"] == "req-1"


def test_concurrent_log_handler_reports_a_failed_write_through_handle_error(tmp_path):
    """emit() calls handleError() inside its except block; ours re-raises there, so the
    writer can count the failure instead of the library printing it."""
    target = BatchRotatingFile(str(tmp_path / "x.log"), max_bytes=0, backup_count=0)
    try:
        target.stream = None  # make the write itself fail

        def broken_open(*args, **kwargs):
            raise OSError("disk gone")

        target._open = broken_open  # type: ignore[method-assign]
        target.do_open = broken_open  # type: ignore[method-assign]
        with pytest.raises(OSError, match="disk gone"):
            target.write_lines("a line")
    finally:
        logging.Handler.close(target)


def test_opentelemetry_keeps_the_global_tracer_provider_as_underscore_tracer_provider():
    trace = pytest.importorskip("opentelemetry.trace")
    assert hasattr(trace, "_TRACER_PROVIDER")
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):  # none set yet (tests run in any order)
        assert set_tracer_provider_of(trace) is None
    else:
        assert set_tracer_provider_of(trace) is provider


def test_sentry_keeps_its_scopes_where_sentry_client_active_reads_them():
    sentry_sdk = pytest.importorskip("sentry_sdk")
    scopes = pytest.importorskip("sentry_sdk.scope")
    from sentry_sdk.client import NonRecordingClient
    from sentry_sdk.transport import Transport

    class Quiet(Transport):
        def capture_envelope(self, envelope):
            pass

    assert all(hasattr(scopes, name) for name in ("_current_scope", "_isolation_scope"))
    assert hasattr(scopes, "_global_scope")
    # The shortcut: without a client of its own, each scope holds a NonRecordingClient,
    # which sentry_client_active() skips without asking it.
    for make in (sentry_sdk.get_current_scope, sentry_sdk.get_isolation_scope):
        make()  # made, if not yet: all three are then read, none skipped as absent
    sentry_sdk.get_global_scope()
    held = [scopes._current_scope.get(), scopes._isolation_scope.get(), scopes._global_scope]
    assert [type(getattr(scope, "client", None)) for scope in held] == [NonRecordingClient] * 3
    assert sentry_client_active(scopes, NonRecordingClient) is sentry_sdk.is_initialized() is False
    options = {
        "dsn": "https://public@sentry.invalid/1",
        "transport": Quiet(),
        "default_integrations": False,  # logging stays as it was for the other tests
        "auto_enabling_integrations": False,
    }
    with sentry_sdk.isolation_scope() as scope:  # a client of one isolation scope only
        scope.set_client(sentry_sdk.Client(**options))
        assert (
            sentry_client_active(scopes, NonRecordingClient) is sentry_sdk.is_initialized() is True
        )
        scope.get_client().close()
    assert sentry_client_active(scopes, NonRecordingClient) is sentry_sdk.is_initialized() is False
    sentry_sdk.init(**options)
    try:
        assert (
            sentry_client_active(scopes, NonRecordingClient) is sentry_sdk.is_initialized() is True
        )
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)
    assert sentry_client_active(scopes, NonRecordingClient) is sentry_sdk.is_initialized() is False
