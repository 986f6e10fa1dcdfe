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
