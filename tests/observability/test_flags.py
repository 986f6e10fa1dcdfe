"""Every OBSERVABILITY flag is read, validated at start-up and re-read on override."""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient, Client, override_settings

from observability.conf import DEFAULTS, obs_settings, validate
from tests.conftest import NOT_SLOW, configure_logs, parse_tokens

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]


def test_enabled_false_logs_nothing_and_sets_no_header(logs, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "ENABLED": False}
    response = Client().get("/t/plain/")
    assert "X-Request-ID" not in response
    assert logs.lines("requests") == []


def test_request_id_header_and_response_header_names(logs, settings):
    settings.OBSERVABILITY = {
        **NOT_SLOW,
        "REQUEST_ID_HEADER": "X-Correlation-ID",
        "RESPONSE_HEADER": "X-Trace",
    }
    response = Client().get(
        "/t/plain/", HTTP_X_CORRELATION_ID="corr-1", HTTP_X_REQUEST_ID="ignored"
    )
    assert response["X-Trace"] == "corr-1"
    assert "X-Request-ID" not in response
    assert len(logs.for_request("corr-1")) == 2


def test_response_header_none_sends_no_header(logs, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "RESPONSE_HEADER": None}
    assert "X-Request-ID" not in Client().get("/t/plain/")


def test_untrusted_incoming_id_is_replaced(logs, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "TRUST_INCOMING_REQUEST_ID": False}
    response = Client().get("/t/plain/", HTTP_X_REQUEST_ID="client-chosen")
    assert response["X-Request-ID"] != "client-chosen"


def test_request_logger_flag(logs, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "REQUEST_LOGGER": "billing.views"}
    response = Client().get("/t/plain/")
    rid = response["X-Request-ID"]
    assert logs.for_request(rid, "requests") == []
    assert any("API Request started" in line for line in logs.for_request(rid, "general"))


def test_security_logger_flag(logs, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "SECURITY_LOGGER": "billing"}
    Client().get("/t/plain/", HTTP_X_REQUEST_ID="bad id")
    assert logs.lines("security") == []
    assert any("request_id_rejected" in line for line in logs.lines("general"))


def test_exclude_paths_skip_lifecycle_but_keep_header(logs, settings):
    assert Client().get("/health/")["X-Request-ID"]
    settings.OBSERVABILITY = {**NOT_SLOW, "EXCLUDE_PATHS": ["/t/"]}
    response = Client().get("/t/plain/")
    assert response["X-Request-ID"]
    assert not any("/health/" in line or "/t/plain/" in line for line in logs.lines("requests"))
    # other records of the excluded request still carry its ID
    assert any(response["X-Request-ID"] in line for line in logs.lines("general"))


def test_log_query_string_flag(logs, settings):
    Client().get("/t/plain/?page=2")
    settings.OBSERVABILITY = {**NOT_SLOW, "LOG_QUERY_STRING": False}
    Client().get("/t/plain/?page=3")
    started = [line for line in logs.lines("requests") if "started" in line]
    assert "Path: /t/plain/?page=2 " in started[0]
    assert "page=3" not in started[1]


def test_log_user_agent_flag(logs, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "LOG_USER_AGENT": False}
    Client().get("/t/plain/", HTTP_USER_AGENT="secret-agent")
    assert "secret-agent" not in logs.text("requests")


def test_client_error_level_flag(logs, settings):
    Client().get("/api/v1/nope/")
    settings.OBSERVABILITY = {**NOT_SLOW, "CLIENT_ERROR_LEVEL": "WARNING"}
    Client().get("/api/v1/nope/")
    completed = [line for line in logs.lines("requests") if "completed" in line]
    assert " INFO [billing.api] API Request completed - Status: 404" in completed[0]
    assert " WARNING [billing.api] API Request completed - Status: 404" in completed[1]


def test_trusted_proxies_flag(logs, settings):
    headers = {"HTTP_X_FORWARDED_FOR": "203.0.113.9, 198.51.100.7", "REMOTE_ADDR": "10.0.0.2"}
    Client().get("/t/plain/", **headers)
    settings.OBSERVABILITY = {**NOT_SLOW, "TRUSTED_PROXIES": 1}
    Client().get("/t/plain/", **headers)
    ips = [parse_tokens(line)["ip"] for line in logs.lines("requests") if "started" in line]
    assert ips == ["10.0.0.2", "198.51.100.7"]


def test_redact_flags(logs, settings):
    logger = logging.getLogger("billing")
    logger.info("note", extra={"ticket": "abc"})
    settings.OBSERVABILITY = {**NOT_SLOW, "REDACT_KEYS": ["ticket"]}
    logger.info("note", extra={"ticket": "abc"})
    settings.OBSERVABILITY = {**NOT_SLOW, "REDACT": False}
    logger.info("card 4111 1111 1111 1111", extra={"password": "pw"})
    lines = [line for line in logs.lines("general") if "note" in line or "card" in line]
    assert "ticket=abc" in lines[0]
    assert "ticket=[REDACTED]" in lines[1]
    assert "4111 1111 1111 1111" in lines[2] and "password=pw" in lines[2]


def test_slow_threshold_flag_is_read(settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "SLOW_REQUEST_THRESHOLD": 2.5}
    assert obs_settings.SLOW_REQUEST_THRESHOLD == 2.5


class TestNamesFromSettings:
    """The app names no logger or file of its own: every name comes from OBSERVABILITY."""

    NAMES = {
        "APP_LOGGER": "shop",
        "REQUEST_LOGGER": "shop.http",
        "SECURITY_LOGGER": "shop.audit",
        "EVENTS_LOGGER": "shop.events",
        "PERFORMANCE_LOGGER": "shop.perf",
        "VIEWS_LOGGER": "shop.views",
        "AUTH_LOGGER": "shop.auth",
        "LOG_FILES": {"requests": "shop_http.log", "general": "shop.log"},
    }

    @pytest.fixture
    def renamed(self, settings, tmp_path):
        from tests.conftest import configure_logs

        settings.OBSERVABILITY = {**NOT_SLOW, **self.NAMES}
        log_dir = configure_logs(tmp_path / "logs", observability=self.NAMES)
        yield log_dir
        configure_logs(tmp_path / "after")

    def test_seed_loggers_follow_their_settings(self, renamed):
        from observability import (
            api_logger,
            billing_logger,
            events_logger,
            performance_logger,
            security_logger,
        )

        named = (billing_logger, api_logger, security_logger, performance_logger, events_logger)
        assert [lg.name for lg in named] == [
            "shop",
            "shop.http",
            "shop.audit",
            "shop.perf",
            "shop.events",
        ]

    def test_lines_go_to_the_named_files_and_loggers(self, renamed):
        from observability import log_billing_event, log_security_event

        response = Client().get("/t/plain/")
        log_security_event(event_type="probe", severity="warning")
        log_billing_event(event_type="invoice_sent")
        requests = renamed.text("shop_http.log")
        assert "INFO [shop.http] API Request started" in requests
        assert response["X-Request-ID"] in requests
        general = renamed.text("shop.log")
        assert "[shop.events] Billing Event: invoice_sent" in general
        security = renamed.text("app_security.log")  # not renamed: the library's neutral name
        assert "[shop.audit] Security Event: probe" in security
        assert not (renamed.path / "billing_api_requests.log").exists()

    def test_logtrace_reads_the_named_files(self, renamed, capsys):
        from django.core.management import call_command

        rid = Client().get("/t/plain/")["X-Request-ID"]
        renamed.lines("shop_http.log")
        call_command("logtrace", rid, "--dir", str(renamed.path))
        out = capsys.readouterr().out
        assert "[requests] " in out and "API Request completed" in out

    def test_a_log_file_name_with_a_directory_is_refused(self):
        from observability.conf import validate

        assert validate({"LOG_FILES": {"general": "../x.log"}})
        assert validate({"LOG_FILES": {"nope": "x.log"}})
        assert validate({"REQUEST_LOGGER": ""})


@pytest.mark.parametrize(
    ("key", "value"),
    [("TRUST_INCOMING_TRACEPARENT", "yes"), ("TRACE_RESPONSE_HEADER", "bad header")],
)
def test_trace_context_flags_are_validated(key, value):
    (problem,) = validate({key: value})
    assert key in problem and repr(value) in problem


def test_trace_context_flags_are_read(settings):
    settings.OBSERVABILITY = {
        **NOT_SLOW,
        "TRUST_INCOMING_TRACEPARENT": False,
        "TRACE_RESPONSE_HEADER": None,
    }
    assert obs_settings.TRUST_INCOMING_TRACEPARENT is False
    assert obs_settings.TRACE_RESPONSE_HEADER is None


class TestVolumeFlags:
    """Per-line levels, exclusion patterns, sampling, flood control and metrics switches."""

    def test_started_level_none_writes_only_the_terminal_line(self, logs, settings):
        settings.OBSERVABILITY = {**NOT_SLOW, "STARTED_LEVEL": None}
        rid = Client().get("/t/plain/")["X-Request-ID"]
        (line,) = logs.for_request(rid)
        assert "API Request completed" in line

    def test_started_and_completed_levels(self, logs, settings):
        settings.OBSERVABILITY = {
            **NOT_SLOW,
            "STARTED_LEVEL": "DEBUG",
            "COMPLETED_LEVEL": "WARNING",
        }
        logging.getLogger("billing.api").setLevel(logging.DEBUG)
        try:
            rid = Client().get("/t/plain/")["X-Request-ID"]
        finally:
            logging.getLogger("billing.api").setLevel(logging.INFO)
        logs.lines("requests")
        # the requests file takes INFO and up: the DEBUG started line is not in it
        (line,) = logs.for_request(rid)
        assert " WARNING [billing.api] API Request completed - Status: 200" in line

    def test_completed_level_below_the_logger_level_writes_no_half_pair(self, logs, settings):
        settings.OBSERVABILITY = {**NOT_SLOW, "COMPLETED_LEVEL": "DEBUG"}
        ok = Client().get("/t/plain/")["X-Request-ID"]
        missing = Client().get("/t/nope/")["X-Request-ID"]
        assert logs.for_request(ok) == []  # neither line of a success
        assert len(logs.for_request(missing)) == 2  # a 4xx keeps both

    def test_slow_request_level(self, logs, settings):
        settings.OBSERVABILITY = {
            **NOT_SLOW,
            "SLOW_REQUEST_THRESHOLD": 0,
            "SLOW_REQUEST_LEVEL": "ERROR",
        }
        rid = Client().get("/t/plain/")["X-Request-ID"]
        (slow,) = [line for line in logs.lines("errors") if f"request_id={rid} " in line]
        assert " ERROR [billing.api] Slow API request detected" in slow

    def test_exclude_patterns_are_regular_expressions(self, logs, settings):
        settings.OBSERVABILITY = {**NOT_SLOW, "EXCLUDE_PATTERNS": [r"^/t/pl[a-z]+/$", r"\.png$"]}
        plain = Client().get("/t/plain/")
        other = Client().get("/t/plain/x.png")
        kept = Client().get("/t/nope/")
        assert plain["X-Request-ID"] and logs.for_request(plain["X-Request-ID"]) == []
        assert logs.for_request(other["X-Request-ID"]) == []
        assert len(logs.for_request(kept["X-Request-ID"])) == 2
        from observability.conf import obs_settings as current

        assert current.EXCLUDE_PATTERNS[0].pattern == r"^/t/pl[a-z]+/$"  # compiled once

    def test_sample_rate_zero_keeps_only_what_must_be_kept(self, logs, settings):
        settings.OBSERVABILITY = {**NOT_SLOW, "SAMPLE_RATE": 0.0}
        assert logs.for_request(Client().get("/t/plain/")["X-Request-ID"]) == []
        assert len(logs.for_request(Client().get("/t/nope/")["X-Request-ID"])) == 2

    def test_flood_limit_window_and_loggers(self, logs, settings):
        from observability.testing import drain_logs

        settings.OBSERVABILITY = {
            **NOT_SLOW,
            "FLOOD_LIMIT": 2,
            "FLOOD_WINDOW": 30,
            "FLOOD_LOGGERS": ["billing.views"],
        }
        for n in range(5):
            logging.getLogger("billing.views").warning("retrying %s", n)
        drain_logs()
        lines = [line for line in logs.lines("general") if "retrying" in line]
        assert len(lines) == 3
        assert "Repeated: 3 more records like: retrying 2" in lines[2]
        assert "repeated=3 " in lines[2] and "window=30 " in lines[2]

    def test_flood_limit_zero_turns_flood_control_off(self, logs, settings):
        from observability import log_security_event

        settings.OBSERVABILITY = {**NOT_SLOW, "FLOOD_LIMIT": 0}
        for _ in range(30):
            log_security_event(event_type="probe", severity="warning")
        assert len([line for line in logs.lines("security") if "probe" in line]) == 30

    def test_metrics_flags(self, settings):
        from prometheus_client import REGISTRY

        def count():
            labels = {
                "http_request_method": "GET",
                "http_route": "t/plain/",
                "http_response_status_code": "200",
            }
            name = "http_server_request_duration_seconds_count"
            return REGISTRY.get_sample_value(name, labels) or 0

        settings.OBSERVABILITY = {**NOT_SLOW, "METRICS": False}
        before = count()
        Client().get("/t/plain/")
        assert count() == before
        assert Client().get("/metrics").status_code == 404
        settings.OBSERVABILITY = {**NOT_SLOW, "METRICS_ALLOWED_IPS": ["10.0.0.0/8"]}
        assert Client().get("/metrics").status_code == 404
        assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
        settings.OBSERVABILITY = {**NOT_SLOW, "METRICS_TOKEN": "t0ken-for-the-scraper-123"}
        refused = Client(REMOTE_ADDR="203.0.113.5").get("/metrics")
        assert refused.status_code == 404
        scraper = Client(
            REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION="Bearer t0ken-for-the-scraper-123"
        )
        assert scraper.get("/metrics").status_code == 200


def test_service_names_and_file_modes(tmp_path, settings):
    """SERVICE_NAME / SERVICE_VERSION / SERVICE_ENVIRONMENT are ECS's service.*, re-read on
    override; LOG_FILE_MODE / LOG_DIR_MODE are the modes new files and directories get."""
    import json
    import stat

    settings.OBSERVABILITY = {
        **settings.OBSERVABILITY,
        "SERVICE_NAME": "shop",
        "SERVICE_VERSION": "2.0.1",
        "SERVICE_ENVIRONMENT": "qa",
    }
    target = tmp_path / "new"
    logs = configure_logs(
        target, log_format="ecs", observability={"LOG_FILE_MODE": 0o600, "LOG_DIR_MODE": 0o700}
    )
    logging.getLogger("billing").info("hello")
    line = json.loads(logs.lines("general")[-1])
    assert line["service"] == {"name": "shop", "version": "2.0.1", "environment": "qa"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert stat.S_IMODE((target / "billing_api.log").stat().st_mode) == 0o600


def test_every_documented_flag_has_a_test_here():
    with open(__file__, encoding="utf-8") as handle:
        source = handle.read()
    for key in DEFAULTS:
        assert f'"{key}"' in source, f"no test reads OBSERVABILITY[{key!r}]"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"SLOW_REQUEST_THRESHOLD": "1s"},
            "OBSERVABILITY['SLOW_REQUEST_THRESHOLD'] must be a number of seconds >= 0, got '1s'",
        ),
        ({"SLOW_REQUEST_THRESHOLD": -1}, "must be a number of seconds >= 0, got -1"),
        ({"ENABLED": "yes"}, "OBSERVABILITY['ENABLED'] must be True or False, got 'yes'"),
        ({"EXCLUDE_PATHS": ["health/"]}, "must be a list of path prefixes starting with '/'"),
        ({"TRUSTED_PROXIES": ["not-an-ip"]}, "OBSERVABILITY['TRUSTED_PROXIES']"),
        ({"REQUEST_ID_HEADER": "X Request"}, "OBSERVABILITY['REQUEST_ID_HEADER']"),
        ({"SLOW_THRESHOLD": 1}, "OBSERVABILITY['SLOW_THRESHOLD'] is not a known setting"),
        ({"SERVICE_NAME": ""}, "OBSERVABILITY['SERVICE_NAME'] must be None or a printable text"),
        ({"SERVICE_VERSION": 2}, "OBSERVABILITY['SERVICE_VERSION'] must be None or a printable"),
        ({"SERVICE_ENVIRONMENT": "qa\n"}, "OBSERVABILITY['SERVICE_ENVIRONMENT'] must be None"),
        ({"LOG_FILE_MODE": 0o644 | 0o100}, "OBSERVABILITY['LOG_FILE_MODE'] must be a file mode"),
        ({"LOG_DIR_MODE": 0o600}, "OBSERVABILITY['LOG_DIR_MODE'] must be a directory mode"),
        (
            {"SAMPLE_RATE": 1.5},
            "OBSERVABILITY['SAMPLE_RATE'] must be a fraction of fast successful requests "
            "from 0.0 to 1.0, got 1.5",
        ),
        ({"STARTED_LEVEL": "ERROR"}, "or None for no started line, got 'ERROR'"),
        ({"COMPLETED_LEVEL": None}, "OBSERVABILITY['COMPLETED_LEVEL'] must be 'DEBUG'"),
        ({"SLOW_REQUEST_LEVEL": "LOUD"}, "OBSERVABILITY['SLOW_REQUEST_LEVEL'] must be one of"),
        (
            {"EXCLUDE_PATTERNS": ["/ok/", "(unclosed"]},
            "OBSERVABILITY['EXCLUDE_PATTERNS'] must be a list of regular expressions that "
            "compile, got ['/ok/', '(unclosed']",
        ),
        ({"FLOOD_LIMIT": -1}, "OBSERVABILITY['FLOOD_LIMIT'] must be a number of records"),
        ({"FLOOD_WINDOW": 0}, "OBSERVABILITY['FLOOD_WINDOW'] must be a number of seconds > 0"),
        ({"FLOOD_LOGGERS": "billing"}, "OBSERVABILITY['FLOOD_LOGGERS'] must be a list of logger"),
        (
            {"FLOOD_LOGGERS": ["app.requests"]},
            "must not name the REQUEST_LOGGER ('app.requests'): lifecycle lines are sampled",
        ),
        (
            {"FLOOD_IPV4_PREFIX": 33},
            "OBSERVABILITY['FLOOD_IPV4_PREFIX'] must be a prefix length from 8 to 32",
        ),
        (
            {"FLOOD_IPV6_PREFIX": 8},
            "OBSERVABILITY['FLOOD_IPV6_PREFIX'] must be a prefix length from 16 to 128",
        ),
        ({"METRICS": 1}, "OBSERVABILITY['METRICS'] must be True or False, got 1"),
        ({"METRICS_ALLOWED_IPS": ["localhost"]}, "OBSERVABILITY['METRICS_ALLOWED_IPS'] must be"),
        (
            {"METRICS_TOKEN": "short secret"},
            "OBSERVABILITY['METRICS_TOKEN'] must be None or a token of at least 16 printable "
            "characters without spaces, got a string of 12 characters (not shown)",
        ),
        (
            {"SEEN_IDS_CACHE": "nowhere"},
            "OBSERVABILITY['SEEN_IDS_CACHE'] must be the alias of a cache in CACHES that every "
            "worker shares, or None for no reuse check of incoming request IDs, got 'nowhere'",
        ),
        (
            {"SEEN_IDS_WINDOW": 0},
            "OBSERVABILITY['SEEN_IDS_WINDOW'] must be a number of seconds > 0 and <= 604800",
        ),
        (
            {"LOG_ROOT": "central/root"},
            "OBSERVABILITY['LOG_ROOT'] must be None or an absolute path: the central root "
            "holding one folder per host, got 'central/root'",
        ),
        (
            {"VIEWER_RATE": "lots"},
            "OBSERVABILITY['VIEWER_RATE'] must be None or a rate such as 120/min (a whole number "
            ">= 1, then /s, /min, /hour or /day): pages of the trace viewer each staff member "
            "may open, got 'lots'",
        ),
        (
            {"FLOOD_IPV4_NETWORK_PREFIX": 7},
            "OBSERVABILITY['FLOOD_IPV4_NETWORK_PREFIX'] must be a prefix length from 8 to 32",
        ),
        (
            {"FLOOD_IPV6_NETWORK_PREFIX": 129},
            "OBSERVABILITY['FLOOD_IPV6_NETWORK_PREFIX'] must be a prefix length from 16 to 128",
        ),
        (
            {"FLOOD_NETWORK_LIMIT": True},
            "OBSERVABILITY['FLOOD_NETWORK_LIMIT'] must be a whole number of security lines per "
            "network and window >= 0",
        ),
        (
            {"FLOOD_GLOBAL_LIMIT": 1.5},
            "OBSERVABILITY['FLOOD_GLOBAL_LIMIT'] must be a whole number of guarded lines per "
            "window over every client >= 0",
        ),
        (
            {"FLOOD_CACHE": "nowhere"},
            "OBSERVABILITY['FLOOD_CACHE'] must be the alias of a cache in CACHES that every "
            "worker shares, or None to count the network and global budgets in each process",
        ),
        (
            {"SEEN_IDS_PER_CLIENT": 0},
            "OBSERVABILITY['SEEN_IDS_PER_CLIENT'] must be a whole number >= 1 and <= 1000000 "
            "(IDs one client may have remembered per window), or None for no quota, got 0",
        ),
        (
            {"SEEN_IDS_QUOTA_CACHE": "nowhere"},
            "OBSERVABILITY['SEEN_IDS_QUOTA_CACHE'] must be the alias of a cache in CACHES that "
            "every worker shares, or None to count in SEEN_IDS_CACHE, got 'nowhere'",
        ),
    ],
)
def test_bad_flags_are_named_with_constraint_and_value(config, expected):
    problems = validate(config)
    assert len(problems) == 1
    assert expected in problems[0]


def test_bad_flag_is_refused_on_override():
    with (
        pytest.raises(ImproperlyConfigured, match="SLOW_REQUEST_THRESHOLD"),
        override_settings(OBSERVABILITY={"SLOW_REQUEST_THRESHOLD": "fast"}),
    ):
        pass


def test_bad_flag_stops_start_up(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "SLOW_REQUEST_THRESHOLD": "-3", "LOG_BASE_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert (
        "Environment variable SLOW_REQUEST_THRESHOLD must be a number of seconds >= 0"
        in result.stderr
    )
    assert "got '-3'" in result.stderr


class TestDecoratorWithoutMiddleware:
    """With ENABLED False the seed's decorator logs the whole lifecycle itself, once."""

    @pytest.fixture(autouse=True)
    def _middleware_off(self, settings):
        settings.OBSERVABILITY = {**NOT_SLOW, "ENABLED": False}

    def test_drf_view_under_api_view(self, logs):
        response = Client().post("/t/decorated/", {}, content_type="application/json")
        assert response.status_code == 201
        lines = logs.lines("requests")
        assert len(lines) == 2
        assert (
            "API Request started" in lines[0] and "API Request completed - Status: 201" in lines[1]
        )
        rid = parse_tokens(lines[0])["request_id"]
        assert parse_tokens(lines[1])["request_id"] == rid
        view_line = next(line for line in logs.lines("general") if "decorated view ran" in line)
        assert f"request_id={rid} " in view_line

    def test_plain_and_async_views(self, logs):
        Client().get("/t/decorated-plain/")
        assert len(logs.lines("requests")) == 2

    async def test_async_view(self, logs):
        await AsyncClient().get("/t/decorated-async/")
        lines = logs.lines("requests")
        assert [("started" in lines[0]), ("completed" in lines[1])] == [True, True]

    def test_failure_logged_once(self, logs):
        response = Client(raise_request_exception=False).get("/t/decorated-boom/")
        assert response.status_code == 500
        lines = logs.lines("requests")
        assert len(lines) == 2
        assert "API Request failed" in lines[1] and "RuntimeError" in lines[1]


def test_viewer_admin_links_maps_event_fields_to_admin_pages(settings):
    from observability.viewer.links import admin_links

    settings.OBSERVABILITY = {
        **NOT_SLOW,
        "VIEWER_ADMIN_LINKS": {"invoice_ref": "admin:billing_payment_change"},
    }
    links = admin_links({"invoice_ref": ["7", "../x"], "payment_id": ["8"]})
    assert [(link.label, link.url) for link in links] == [
        ("invoice ref 7", "/admin/billing/payment/7/change/")
    ]
    settings.OBSERVABILITY = {
        **NOT_SLOW,
        "VIEWER_ADMIN_LINKS": {"thing_id": "admin:nothing_here_change"},
    }
    assert admin_links({"thing_id": ["1"]}) == []  # not registered: no link, no error
    settings.OBSERVABILITY = {**NOT_SLOW}
    default = admin_links({"payment_id": ["8"], "refund_id": ["2"], "user_id": ["3"]})
    assert [link.url for link in default] == [
        "/admin/billing/payment/8/change/",
        "/admin/billing/refund/2/change/",
        "/admin/auth/user/3/change/",
    ]
    problems = validate({"VIEWER_ADMIN_LINKS": ["payment_id"]})
    assert problems == [
        "OBSERVABILITY['VIEWER_ADMIN_LINKS'] must be None or a dict of field names to admin "
        "URL names, got ['payment_id']"
    ]


def test_task_flags_celery_and_task_logger(settings, logs):
    """OBSERVABILITY "CELERY" turns the integration on (checked as a bool); "TASK_LOGGER"
    names the logger of the task lifecycle lines."""
    from observability.background.tasks import TaskLines
    from observability.conf import obs_settings

    settings.OBSERVABILITY = {**NOT_SLOW}
    assert obs_settings.CELERY is False  # the library's default: off until asked for
    settings.OBSERVABILITY = {**NOT_SLOW, "TASK_LOGGER": "billing.jobs"}
    logging.getLogger("billing.jobs").propagate = True
    TaskLines("probe.task", 1).start()
    assert "[billing.jobs] Task probe.task started (attempt 1)" in logs.text("general")
    assert validate({"CELERY": "yes"}) == [
        "OBSERVABILITY['CELERY'] must be True or False, got 'yes'"
    ]


@pytest.mark.parametrize(
    "address", [None, "127.0.0.1:9808", "[::1]:9808", "localhost:9808", "0.0.0.0:1", "[::]:65535"]
)
def test_celery_metrics_address_takes_host_and_port(settings, address):
    """OBSERVABILITY "CELERY_METRICS_ADDRESS": where the worker serves /metrics (None: nowhere,
    the default)."""
    assert DEFAULTS["CELERY_METRICS_ADDRESS"] is None
    assert validate({"CELERY_METRICS_ADDRESS": address}) == []
    settings.OBSERVABILITY = {**NOT_SLOW, "CELERY_METRICS_ADDRESS": address}
    served_on = obs_settings.CELERY_METRICS_ADDRESS
    assert served_on == address


@pytest.mark.parametrize(
    "address",
    [
        "9808",
        ":9808",
        "127.0.0.1",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:-1",
        "::1:9808",  # IPv6 without its brackets
        "[::1]",
        "[not-v6]:9808",
        "256.0.0.1:9808",
        "host name:9808",
        "127.0.0.1:9808\n",
        "",
        9808,
        ("127.0.0.1", 9808),
    ],
)
def test_a_bad_celery_metrics_address_is_named_with_the_rule_and_the_value(address):
    assert validate({"CELERY_METRICS_ADDRESS": address}) == [
        "OBSERVABILITY['CELERY_METRICS_ADDRESS'] must be None or an address host:port where "
        "the Celery worker serves /metrics, such as '127.0.0.1:9808' (port 1 to 65535; IPv6 "
        f"as '[::1]:9808'), got {address!r}"
    ]


class TestInsideARequest:
    """The flags of spans and queries (their effects on requests: test_queries, test_spans)."""

    def test_span_logger_and_level(self, logs, settings):
        from observability import request_context, span

        settings.OBSERVABILITY = {
            **NOT_SLOW,
            "SPAN_LOGGER": "billing.inside",
            "SPAN_LEVEL": "WARNING",
        }
        with request_context(), span("flagged"):
            pass
        (line,) = [x for x in logs.lines("general") if "span_name=flagged" in x]
        assert " WARNING [billing.inside] Span flagged: " in line

    def test_db_flags_are_read(self, settings):
        flags = {
            "DB_QUERIES": False,
            "DB_QUERY_LEVEL": None,
            "REPEATED_QUERY_COUNT": 3,
            "REPEATED_QUERY_TIME": 0.25,
            "SLOW_QUERY_THRESHOLD": None,
            "VIEWER_URL": "https://billing.example.com/ops/requests/",  # test_sentry: the link
        }
        settings.OBSERVABILITY = flags
        assert {key: getattr(obs_settings, key) for key in flags} == flags

    @pytest.mark.parametrize(
        ("key", "value", "constraint"),
        [
            ("DB_QUERIES", "yes", "must be True or False"),
            ("DB_QUERY_LEVEL", "LOUD", "must be a level name such as 'DEBUG', or None"),
            (
                "REPEATED_QUERY_COUNT",
                1,
                "must be a number of runs of one query in one request >= 2",
            ),
            ("REPEATED_QUERY_TIME", -1, "must be a number of seconds >= 0"),
            ("SLOW_QUERY_THRESHOLD", 0, "must be a number of seconds > 0, or None"),
            ("SPAN_LEVEL", "info", "must be one of 'DEBUG'"),
            ("SPAN_LOGGER", "", "must be a logger name"),
            ("VIEWER_URL", "billing.example.com/ops", "must be None or the trace viewer's URL"),
        ],
    )
    def test_bad_values_are_named(self, key, value, constraint):
        (problem,) = validate({key: value})
        assert problem.startswith(f"OBSERVABILITY[{key!r}] {constraint}")
        assert problem.endswith(f"got {value!r}")
