"""The lifecycle lines a user reads in billing_api_requests.log, and the X-Request-ID header."""

from __future__ import annotations

import uuid

import pytest
from django.test import AsyncClient, Client
from freezegun import freeze_time

from observability.conf import DEFAULTS
from tests import urls as test_urls
from tests.conftest import NOT_SLOW, parse_tokens, token_for

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]


def lifecycle(logs, response):
    rid = response["X-Request-ID"]
    return rid, logs.for_request(rid)


def assert_one_pair(lines, terminal="API Request completed"):
    started = [line for line in lines if "API Request started" in line]
    ended = [
        line for line in lines if "API Request completed" in line or "API Request failed" in line
    ]
    assert len(started) == 1, lines
    assert len(ended) == 1, lines
    assert terminal in ended[0]
    return started[0], ended[0]


def test_sync_view_logs_started_and_completed_with_header(logs):
    response = Client().get("/t/plain/?x=1", HTTP_USER_AGENT="pytest-agent")
    rid, lines = lifecycle(logs, response)
    uuid.UUID(rid)
    started, completed = assert_one_pair(lines)
    assert (
        "INFO [billing.api] API Request started - User: anonymous (ID: -), IP: 127.0.0.1, "
        "Method: GET, Path: /t/plain/?x=1 |" in started
    )
    assert parse_tokens(started)["user_agent"] == "pytest-agent"
    tokens = parse_tokens(completed)
    assert tokens["status"] == "200"
    assert tokens["response_size"] == "2"
    assert tokens["path"] == "/t/plain/"
    assert "Status: 200, Duration: " in completed
    # the view's own record carries the same request ID, in the general file
    assert any(
        f"request_id={rid} " in line and "plain view ran" in line for line in logs.lines("general")
    )


def test_drf_view_attributes_jwt_user_after_authentication(logs, user):
    response = Client().get("/t/whoami/", HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    assert response.status_code == 200
    assert response.json()["context"]["username"] == "john_doe"
    rid, lines = lifecycle(logs, response)
    started, completed = assert_one_pair(lines)
    assert "user_id=- " in started  # unknown on the way in: DRF authenticates in the view
    tokens = parse_tokens(completed)
    assert (tokens["user_id"], tokens["username"]) == (str(user.id), "john_doe")
    view_line = next(line for line in logs.lines("general") if "whoami for" in line)
    assert f"request_id={rid} user_id={user.id} username=john_doe" in view_line


def test_anonymous_request_after_authenticated_has_no_stale_user(logs, user):
    client = Client()
    client.get("/t/whoami/", HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    response = client.get("/t/plain/")
    _, lines = lifecycle(logs, response)
    for line in lines:
        assert "user_id=- username=-" in line


@pytest.mark.parametrize(
    ("method", "path", "status", "headers"),
    [
        ("get", "/api/v1/does-not-exist/", 404, {}),
        ("delete", "/api/v1/payments/", 405, {"auth": True}),
        ("get", "/api/v1/payments/", 401, {}),
        ("get", "/api/v1/admin/stats/", 403, {"auth": True}),
        ("post", "/api/v1/payments/", 415, {"auth": True}),
    ],
)
def test_error_responses_are_logged_and_carry_the_header(logs, user, method, path, status, headers):
    client = Client()
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token_for(user)}"} if headers.get("auth") else {}
    kwargs = {"data": "x", "content_type": "text/plain"} if method == "post" else {}
    response = getattr(client, method)(path, **kwargs, **extra)
    assert response.status_code == status
    rid, lines = lifecycle(logs, response)
    _, completed = assert_one_pair(lines)
    assert parse_tokens(completed)["status"] == str(status)
    assert response.json()["error"]["request_id"] == rid


def test_unhandled_exception_logs_failed_with_traceback_and_500_has_header(logs):
    client = Client(raise_request_exception=False)
    response = client.get("/t/boom/")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"
    rid, lines = lifecycle(logs, response)
    _, failed = assert_one_pair(lines, "API Request failed")
    assert " ERROR [billing.api] API Request failed - Status: 500" in failed
    assert "Error: ValueError" in failed
    assert "Traceback (most recent call last):" in failed
    assert "kaboom" in failed
    errors = logs.lines("errors")
    assert any(f"request_id={rid} " in line and "API Request failed" in line for line in errors)
    # Django's own record of the 500 carries the context too
    assert any(f"request_id={rid} " in line and "[django.request]" in line for line in errors)


def test_streaming_response_completes_when_stream_ends(logs):
    response = Client().get("/t/stream/")
    rid = response["X-Request-ID"]
    body = b"".join(response.streaming_content)
    assert body == b"chunk0\nchunk1\nchunk2\n"
    _, completed = assert_one_pair(logs.for_request(rid))
    assert parse_tokens(completed)["response_size"] == str(len(body))
    chunk_lines = [line for line in logs.lines("general") if "streaming chunk" in line]
    assert len(chunk_lines) == 3
    assert all(f"request_id={rid} " in line for line in chunk_lines)


async def test_async_streaming_response_keeps_context(logs):
    response = await AsyncClient().get("/t/astream/")
    rid = response["X-Request-ID"]
    body = b"".join([chunk async for chunk in response.streaming_content])
    assert body.count(b"chunk") == 3
    assert_one_pair(logs.for_request(rid))
    chunk_lines = [line for line in logs.lines("general") if "async streaming chunk" in line]
    assert len(chunk_lines) == 3
    assert all(f"request_id={rid} " in line for line in chunk_lines)


async def test_async_view_is_logged(logs):
    response = await AsyncClient().get("/t/async/")
    rid, lines = lifecycle(logs, response)
    assert_one_pair(lines)
    assert response.json()["context"]["request_id"] == rid


def test_incoming_valid_request_id_is_kept(logs):
    response = Client().get("/t/plain/", HTTP_X_REQUEST_ID="client-abc.123:XYZ_-")
    assert response["X-Request-ID"] == "client-abc.123:XYZ_-"
    assert_one_pair(logs.for_request("client-abc.123:XYZ_-"))


HOSTILE_IDS = [
    "A" * 10_240,
    "-" * 10_000 + str(uuid.uuid4()),
    "abc\r\nINFO forged line",
    "has space",
    'quote"d',
    "it's",
    "ünïcode",
    "x" * 129,
    "",
]


@pytest.mark.parametrize("hostile", HOSTILE_IDS, ids=range(len(HOSTILE_IDS)))
def test_hostile_request_id_is_replaced_never_echoed_nor_logged(logs, hostile):
    client = Client()
    response = client.get("/t/plain/", HTTP_X_REQUEST_ID=hostile)
    rid = response["X-Request-ID"]
    assert rid != hostile
    uuid.UUID(rid)
    assert_one_pair(logs.for_request(rid))
    everything = logs.everything()
    if len(hostile) > 3:
        assert hostile not in everything
        assert hostile[:40] not in everything or hostile[:40] == "-" * 40
    security = [line for line in logs.lines("security") if "request_id_rejected" in line]
    if hostile:
        assert len(security) == 1
        assert f"length={len(hostile)}" in security[0]
        assert f"request_id={rid} " in security[0]


def test_exactly_one_pair_with_middleware_and_decorator(logs):
    response = Client().post("/t/decorated/", {}, content_type="application/json")
    assert response.status_code == 201
    assert_one_pair(logs.for_request(response["X-Request-ID"]))


class TestSlowRequests:
    @pytest.fixture
    def frozen(self, settings):
        """Every request of these tests runs under a frozen clock: its duration is exactly
        what the view advances it by, so the layer's default threshold (1 s) is tested."""
        default = DEFAULTS["SLOW_REQUEST_THRESHOLD"]
        settings.OBSERVABILITY = {**settings.OBSERVABILITY, "SLOW_REQUEST_THRESHOLD": default}
        with freeze_time("2026-01-20 10:30:00") as freezer:
            test_urls.clock["freezer"] = freezer
            yield freezer
        test_urls.clock.update(freezer=None, advance=0.0)

    def slow_lines(self, logs, response):
        return [
            line
            for line in logs.for_request(response["X-Request-ID"])
            if "Slow API request" in line
        ]

    def test_at_threshold_warns_with_duration_and_threshold(self, logs, frozen):
        test_urls.clock["advance"] = 1.0
        response = Client().get("/t/plain/")
        (line,) = self.slow_lines(logs, response)
        assert "WARNING [billing.api] Slow API request detected - Duration: 1.000 seconds" in line
        tokens = parse_tokens(line)
        assert (tokens["duration"], tokens["threshold"]) == ("1.0", "1.0")
        _, completed = assert_one_pair(logs.for_request(response["X-Request-ID"]))
        assert "Duration: 1.000 seconds" in completed

    def test_below_threshold_does_not_warn(self, logs, frozen):
        test_urls.clock["advance"] = 0.999
        assert self.slow_lines(logs, Client().get("/t/plain/")) == []

    def test_threshold_flag_changes_the_limit(self, logs, frozen, settings):
        settings.OBSERVABILITY = {**NOT_SLOW, "SLOW_REQUEST_THRESHOLD": 0.25}
        test_urls.clock["advance"] = 0.3
        (line,) = self.slow_lines(logs, Client().get("/t/plain/"))
        assert "threshold=0.25" in line

    def test_slow_drf_request_seen_by_grep_recipe(self, logs, frozen):
        test_urls.clock["advance"] = 1.877
        Client().post("/t/decorated/", {}, content_type="application/json")
        lines = [line for line in logs.lines("requests") if "Slow API request" in line]
        assert len(lines) == 1
        assert "Duration: 1.877 seconds" in lines[0]


def test_logging_never_evaluates_a_lazy_user(logs, rf):
    """A session-backed lazy user (AuthenticationMiddleware) is never resolved by the layer."""
    from django.http import HttpResponse
    from django.utils.functional import SimpleLazyObject

    from observability.middleware import RequestLoggingMiddleware

    def resolve():
        raise AssertionError("the logging layer looked the user up")

    request = rf.get("/t/plain/")
    request.user = SimpleLazyObject(resolve)
    response = RequestLoggingMiddleware(lambda r: HttpResponse("ok"))(request)
    _, completed = assert_one_pair(logs.for_request(response["X-Request-ID"]))
    assert "user_id=- username=-" in completed


@pytest.mark.parametrize(
    ("path", "route", "view"),
    [
        ("/t/plain/", "t/plain/", "tests.urls.plain_view"),
        ("/api/v1/plans/", "api/v1/plans/", "billing.views.PlanListCreateView"),
        ("/t/nope/4111111111111111/", "-", "-"),
    ],
)
def test_terminal_line_names_the_route_and_view_never_the_raw_path(logs, path, route, view):
    response = Client().get(path)
    completed = next(
        line
        for line in logs.for_request(response["X-Request-ID"])
        if "API Request completed" in line
    )
    tokens = parse_tokens(completed)
    assert (tokens["route"], tokens["view"]) == (route, view)


def test_route_of_a_pattern_with_a_converter(logs, api):
    response = api.get("/api/v1/payments/12345/")  # a 404 from the view: the route matched
    completed = next(
        line
        for line in logs.for_request(response["X-Request-ID"])
        if "API Request completed" in line
    )
    assert parse_tokens(completed)["route"] == "api/v1/payments/<int:pk>/"
