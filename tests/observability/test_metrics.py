"""GET /metrics: OpenTelemetry's HTTP names, bounded labels, the layer's own figures, access."""

from __future__ import annotations

import os
import threading

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory
from prometheus_client.parser import text_string_to_metric_families

from observability import log_security_event
from observability.middleware import RequestLoggingMiddleware
from observability.monitoring.metrics import file_label, render
from observability.tracing.routes import readable_route
from tests.conftest import NOT_SLOW, token_for
from tests.polling import DEADLINE

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

DURATION = "http_server_request_duration_seconds"
OTEL_BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0",
                "2.5", "5.0", "7.5", "10.0", "+Inf")  # fmt: skip


def scrape(client: Client | None = None) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} from the exposition text."""
    response = (client or Client()).get("/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def requests(samples, method: str, route: str, status: int) -> float:
    key = (
        ("http_request_method", method),
        ("http_response_status_code", str(status)),
        ("http_route", route),
    )
    return samples.get(f"{DURATION}_count", {}).get(key, 0.0)


def label_values(samples, name: str) -> set[str]:
    return {
        value
        for series in samples.values()
        for key in series
        for label, value in key
        if label == name
    }


def get_all(client: Client, path: str) -> int:
    """GET and read the whole body (a streamed one too: the request ends with its stream)."""
    response = client.get(path)
    if response.streaming:
        b"".join(response.streaming_content)
    return response.status_code


class TestRequests:
    def test_counted_under_opentelemetry_names_with_the_status(self, api, logs):
        before = scrape()
        for _ in range(3):
            assert Client().get("/t/plain/").status_code == 200
        for pk in (101, 202, 303):
            assert api.get(f"/api/v1/payments/{pk}/").status_code == 404
        after = scrape()
        route = "api/v1/payments/<int:pk>/"
        assert (
            requests(after, "GET", "t/plain/", 200) - requests(before, "GET", "t/plain/", 200) == 3
        )
        assert requests(after, "GET", route, 404) - requests(before, "GET", route, 404) == 3
        # One histogram gives rate and latency; the old counter and label names are gone.
        assert "http_server_requests_total" not in after
        assert not {"method", "route", "status"} & {
            label for series in after.values() for key in series for label, _ in key
        }
        buckets = {
            dict(key)["le"]
            for key in after[f"{DURATION}_bucket"]
            if dict(key)["http_route"] == "t/plain/"
        }
        assert buckets == set(OTEL_BUCKETS)

    def test_methods_outside_the_standard_set_are_other(self, logs):
        before = scrape()
        Client().generic("BREW", "/t/plain/")
        Client().generic("X-CARD-4111111111111111", "/t/plain/")
        after = scrape()
        assert (
            requests(after, "_OTHER", "t/plain/", 200) - requests(before, "_OTHER", "t/plain/", 200)
            == 2
        )
        methods = label_values(after, "http_request_method")
        assert methods <= {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT",
                           "TRACE", "_OTHER"}  # fmt: skip

    def test_static_files_and_unmatched_paths_have_their_own_fixed_routes(self, logs):
        client = Client()
        before = scrape()
        assert get_all(client, "/static/admin/css/base.css") == 200  # WhiteNoise
        assert get_all(client, "/static/no-such-file.css") == 404
        assert get_all(client, "/no/such/page/") == 404
        after = scrape()
        assert requests(after, "GET", "_static", 200) - requests(before, "GET", "_static", 200) == 1
        gained = requests(after, "GET", "_unmatched", 404) - requests(
            before, "GET", "_unmatched", 404
        )
        assert gained == 2
        routes = label_values(after, "http_route")
        assert "-" not in routes and not any(route.startswith("/") for route in routes)

    def test_a_regex_route_reads_like_a_path_route_in_metrics_and_lines(self, logs):
        response = Client().get("/ops/requests/abc-123/")  # a re_path(); anonymous: to the login
        after = scrape()
        assert requests(after, "GET", "ops/requests/<request_id>/", response.status_code) >= 1
        (completed,) = [
            line
            for line in logs.for_request(response["X-Request-ID"])
            if "API Request completed" in line
        ]
        assert " route=ops/requests/<request_id>/ " in completed
        assert not any(
            "(?P<" in route or "$" in route for route in label_values(after, "http_route")
        )

    def test_a_regex_route_is_simplified_once_per_pattern(self, monkeypatch):
        from observability.tracing import routes

        calls = []
        original = routes._simplify
        monkeypatch.setattr(routes, "_simplify", lambda p: calls.append(p) or original(p))
        pattern = r"^once/(?P<slug>[-\w]+)/(\d{4})/\.json$"
        assert readable_route(pattern) == "once/<slug>/<var>/.json"
        assert readable_route(pattern) == "once/<slug>/<var>/.json"
        assert calls == [pattern]

    @pytest.mark.parametrize(
        ("pattern", "readable"),
        [
            ("ops/requests/(?P<request_id>[A-Za-z0-9._:-]{1,128})/$", "ops/requests/<request_id>/"),
            (r"^blog/(?:page-(?P<page>\d+)/)?$", "blog/page-<page>/"),
            (r"^a/\d+/b/(?P<x>[^/)]+)/$", "a/<var>/b/<x>/"),
            (r"^(?i)caps/(?=x)$", "caps/"),
            ("api/v1/payments/<int:pk>/", "api/v1/payments/<int:pk>/"),  # path(): unchanged
            ("robots.txt", "robots.txt"),
        ],
    )
    def test_readable_route(self, pattern, readable):
        assert readable_route(pattern) == readable

    def test_scrapes_are_not_traffic_and_not_in_flight(self, logs):
        scrape()
        before = scrape()
        after = scrape()
        assert not any("metrics" in route for route in label_values(after, "http_route"))
        assert after[f"{DURATION}_count"] == before[f"{DURATION}_count"]
        in_flight = after["http_server_active_requests"]
        assert in_flight[(("http_request_method", "GET"),)] == 0  # this scrape is not counted

    def test_requests_in_flight_are_counted_until_they_end(self, logs):
        entered, release = threading.Event(), threading.Event()

        def view(request):
            entered.set()
            assert release.wait(DEADLINE)
            return HttpResponse("done")

        middleware = RequestLoggingMiddleware(view)
        thread = threading.Thread(target=middleware, args=(RequestFactory().put("/t/slow-put/"),))
        thread.start()
        try:
            assert entered.wait(DEADLINE)
            during = scrape()["http_server_active_requests"][(("http_request_method", "PUT"),)]
        finally:
            release.set()
            thread.join(DEADLINE)
        after = scrape()["http_server_active_requests"][(("http_request_method", "PUT"),)]
        assert (during, after) == (1, 0)

    def test_no_client_value_makes_a_new_series(self, logs):
        client = Client()
        for n in range(3):  # every kind of request once, so their series exist
            client.get(f"/xqz-{n}/")
            client.generic(f"XQZ{n}", "/t/plain/")
        before = scrape()
        for n in range(3, 40):
            client.get(f"/xqz-{n}/4111111111111111/?id={n}")
            client.generic(f"XQZ{n}", "/t/plain/", HTTP_X_REQUEST_ID=f"client-id-{n}")
            client.get("/t/plain/", HTTP_HOST=f"xqz{n}.example")  # a 400: DisallowedHost
        after = scrape()
        grown = {name for name in after if set(after[name]) - set(before.get(name, {}))}
        assert not {name for name in grown if name.startswith("http_")} - {
            f"{DURATION}_{part}" for part in ("count", "sum", "bucket", "created")
        }
        new_series = set(after[f"{DURATION}_count"]) - set(before[f"{DURATION}_count"])
        assert {dict(key)["http_route"] for key in new_series} <= {"_unmatched", "t/plain/"}
        assert len(new_series) <= 1  # the 400 of a bad Host
        text = Client().get("/metrics").content.decode()
        # Names and labels only: a sample's value (a `_created` timestamp) may hold any digits.
        series = "\n".join(
            line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")
        )
        assert "xqz" not in series.lower() and "4111" not in series and "client-id" not in series


class TestLayer:
    def test_writer_figures_by_file_and_reason(self, logs):
        Client().get("/t/plain/")
        logs.lines("requests")  # written
        samples = scrape()
        assert samples["observability_log_records_written_total"][(("file", "requests"),)] >= 2
        dropped = samples["observability_log_records_dropped_total"]
        assert dropped[(("file", "_queue"), ("reason", "queue_full"))] >= 0
        assert dropped[(("file", "requests"), ("reason", "write_error"))] >= 0
        assert samples["observability_log_queue_records"][()] >= 0
        assert not any(name.startswith("log_") for name in samples)  # one namespace

    def test_write_errors_are_counted_for_their_file(self, logs, monkeypatch):
        from observability import flush_logs
        from observability.output import rotation

        key = (("file", "requests"), ("reason", "write_error"))
        Client().get("/t/plain/")
        flush_logs()
        before = scrape()["observability_log_records_dropped_total"][key]

        def do_write(self, text):
            raise OSError(28, "No space left on device")

        # A full disk cannot be made for real here (root ignores quotas).
        monkeypatch.setattr(rotation.BatchRotatingFile, "do_write", do_write)
        for _ in range(3):
            Client().get("/t/plain/")
            flush_logs()
        monkeypatch.undo()
        assert scrape()["observability_log_records_dropped_total"][key] - before == 6

    def test_security_events_are_counted_even_when_flood_control_keeps_the_line_out(
        self, logs, settings
    ):
        key = (("event_type", "login_failed"), ("severity", "warning"))
        before = scrape().get("observability_security_events_total", {}).get(key, 0)
        settings.OBSERVABILITY = {**NOT_SLOW, "FLOOD_LIMIT": 2, "FLOOD_WINDOW": 3600}
        for _ in range(10):
            log_security_event(event_type="login_failed", severity="WARNING")
        written = [line for line in logs.lines("security") if "login_failed" in line]
        assert len(written) == 2  # the rest wait for the window's summary
        assert scrape()["observability_security_events_total"][key] - before == 10

    def test_djangos_own_security_records_are_counted_before_flood_control(self, logs, settings):
        """A Host-header flood: every DisallowedHost counted, two lines written, and the
        summary that stands for the rest counted with the records it stands for."""
        from observability.testing import drain_logs

        key = (("event_type", "django_disallowed_host"), ("severity", "error"))
        before = scrape()
        events_before = before.get("observability_security_events_total", {}).get(key, 0)
        summaries_before = before.get("observability_flood_summaries_total", {}).get((), 0)
        settings.OBSERVABILITY = {**NOT_SLOW, "FLOOD_LIMIT": 2, "FLOOD_WINDOW": 3600}
        for _ in range(10):
            Client().get("/t/plain/", HTTP_HOST="evil.example")
        written = [line for line in logs.lines("security") if "Invalid HTTP_HOST" in line]
        assert len(written) == 2
        assert scrape()["observability_security_events_total"][key] - events_before == 10
        drain_logs()  # the window's summary
        after = scrape()
        assert after["observability_flood_summaries_total"][()] - summaries_before >= 1
        assert after["observability_flood_repeated_records_total"][()] >= 8

    def test_security_event_labels_are_bounded(self, logs):
        log_security_event(event_type="card 4111111111111111 seen", severity="urgent!")
        for n in range(150):
            log_security_event(event_type=f"made_up_{n}", severity="info")
        events = scrape()["observability_security_events_total"]
        types = {dict(key)["event_type"] for key in events}
        assert len(types) <= 101 and "_OTHER" in types
        assert (("event_type", "_OTHER"), ("severity", "_OTHER")) in events
        assert not any("4111" in value or " " in value for value in types)

    def test_sampled_out_requests_are_counted(self, logs, settings):
        before = scrape()["observability_requests_sampled_out_total"][()]
        settings.OBSERVABILITY = {**NOT_SLOW, "SAMPLE_RATE": 0.0}
        for _ in range(5):
            assert Client().get("/t/plain/").status_code == 200
        Client().get("/no/such/page/")  # a 404 is always written
        assert scrape()["observability_requests_sampled_out_total"][()] - before == 5

    def test_slow_requests_are_counted_by_route(self, logs, settings):
        key = (("http_route", "t/plain/"),)
        before = scrape().get("observability_slow_requests_total", {}).get(key, 0)
        settings.OBSERVABILITY = {**NOT_SLOW, "SLOW_REQUEST_THRESHOLD": 0}
        for _ in range(4):
            Client().get("/t/plain/")
        settings.OBSERVABILITY = {**NOT_SLOW, "SLOW_REQUEST_THRESHOLD": 60}
        Client().get("/t/plain/")
        assert scrape()["observability_slow_requests_total"][key] - before == 4
        assert sum(1 for line in logs.lines("requests") if "Slow API request" in line) == 4

    def test_the_log_file_system_is_measured_at_each_scrape(self, logs):
        Client().get("/t/plain/")
        assert logs.lines("requests")  # the directory exists now
        samples = scrape()
        directory = ()  # one log directory: no label
        stat = os.statvfs(logs.path)
        size = samples["observability_log_filesystem_size_bytes"][directory]
        assert size == stat.f_blocks * stat.f_frsize
        assert 0 < samples["observability_log_filesystem_avail_bytes"][directory] <= size
        assert samples["observability_log_filesystem_files"][directory] == stat.f_files
        assert 0 <= samples["observability_log_filesystem_files_free"][directory] <= stat.f_files

    def test_flood_summaries_are_counted_through_the_api(self, logs):
        from observability.monitoring.metrics import count_flood_summary

        before = scrape()
        count_flood_summary(41)
        after = scrape()

        def gained(name):
            return after[name][()] - before[name][()]

        assert gained("observability_flood_summaries_total") == 1
        assert gained("observability_flood_repeated_records_total") == 41

    def test_this_process_is_read_from_the_system(self):
        from observability.monitoring.system import read_process

        reading = read_process()
        assert reading.cpu_seconds > 0
        assert reading.resident_bytes and reading.resident_bytes > 10_000_000
        assert reading.open_fds == len(os.listdir("/proc/self/fd")) - 1


def test_file_label_is_the_log_files_tag():
    class Handler:
        name = "security_file"

    class Unnamed:
        name = None
        baseFilename = "/var/log/app/app.log"

    assert file_label(Handler()) == "security"
    assert file_label(Unnamed()) == "app.log"


class TestAccess:
    def test_loopback_reads_the_metrics(self):
        body, content_type = render()
        assert b"http_server_request_duration_seconds" in body
        assert content_type.startswith("text/plain")
        assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
        assert Client(REMOTE_ADDR="127.0.0.5").get("/metrics").status_code == 200

    def test_anyone_else_gets_the_404_of_an_unknown_url_and_a_security_event(self, logs):
        refused = Client(REMOTE_ADDR="203.0.113.5").get("/metrics")
        unknown = Client(REMOTE_ADDR="203.0.113.5").get("/no-such-thing")
        assert refused.status_code == unknown.status_code == 404
        assert refused.json()["error"]["code"] == unknown.json()["error"]["code"]
        assert b"http_server" not in refused.content
        (event,) = [line for line in logs.lines("security") if "metrics_access_refused" in line]
        assert "reason=address_not_allowed " in event and "ip=203.0.113.5 " in event

    @pytest.mark.parametrize("version", ["1.x", "4111111111111111"])
    def test_an_accept_version_it_cannot_read_gets_the_text_format(self, version, logs):
        """Not a 500 (prometheus-client compares "1.x" with (1, 0, 0)), never an echo."""
        accept = f"application/openmetrics-text; version={version}"
        response = Client().get("/metrics", HTTP_ACCEPT=accept)
        assert response.status_code == 200
        assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"

    def test_a_forwarded_header_does_not_open_the_door(self):
        client = Client(REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="127.0.0.1")
        assert client.get("/metrics").status_code == 404

    def test_the_bearer_token_opens_it_from_anywhere(self, settings, logs):
        token = "metrics-token-0123456789abcdef"
        settings.OBSERVABILITY = {**NOT_SLOW, "METRICS_TOKEN": token}
        far = "198.51.100.20"
        assert (
            Client(REMOTE_ADDR=far, HTTP_AUTHORIZATION=f"Bearer {token}")
            .get("/metrics")
            .status_code
            == 200
        )
        wrong = Client(REMOTE_ADDR=far, HTTP_AUTHORIZATION=f"Bearer {token}x").get("/metrics")
        assert wrong.status_code == 404
        assert "reason=wrong_token " in logs.text("security")
        assert token not in logs.everything()

    def test_an_api_jwt_is_not_a_metrics_token(self, settings, user):
        settings.OBSERVABILITY = {**NOT_SLOW, "METRICS_TOKEN": "metrics-token-0123456789abcdef"}
        client = Client(REMOTE_ADDR="198.51.100.20", HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
        assert client.get("/metrics").status_code == 404

    def test_allowed_networks_include_ipv4_mapped_addresses(self, settings):
        settings.OBSERVABILITY = {**NOT_SLOW, "METRICS_ALLOWED_IPS": ["10.20.0.0/16"]}
        assert Client(REMOTE_ADDR="10.20.3.4").get("/metrics").status_code == 200
        assert Client(REMOTE_ADDR="::ffff:10.20.3.4").get("/metrics").status_code == 200
        assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 404

    def test_only_get_and_head(self):
        assert Client().post("/metrics").status_code == 405
        assert Client().head("/metrics").status_code == 200
