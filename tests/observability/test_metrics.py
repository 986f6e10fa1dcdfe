"""GET /metrics: counters by route (never the raw path), writer figures, and who may look."""

from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from observability.metrics import file_label, render
from tests.conftest import token_for

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]


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


def requests_total(samples, method: str, route: str, status: int) -> float:
    key = (("method", method), ("route", route), ("status", str(status)))
    return samples.get("http_server_requests_total", {}).get(key, 0.0)


def test_requests_are_counted_by_method_route_and_status(api, logs):
    before = scrape()
    for _ in range(3):
        assert Client().get("/t/plain/").status_code == 200
    for pk in (101, 202, 303):
        assert api.get(f"/api/v1/payments/{pk}/").status_code == 404
    Client().get("/no/such/page/")
    Client().generic("BREW", "/t/plain/")
    after = scrape()
    route = "api/v1/payments/<int:pk>/"
    assert (
        requests_total(after, "GET", "t/plain/", 200)
        - requests_total(before, "GET", "t/plain/", 200)
        == 3
    )
    assert requests_total(after, "GET", route, 404) - requests_total(before, "GET", route, 404) == 3
    assert requests_total(after, "GET", "-", 404) - requests_total(before, "GET", "-", 404) == 1
    assert requests_total(after, "OTHER", "t/plain/", 200) >= 1  # no method label of our own
    count = after["http_server_request_duration_seconds_count"]
    assert count[(("method", "GET"), ("route", route))] >= 3
    labels = {value for series in after.values() for key in series for _, value in key}
    assert not any("/no/such" in value or "101" in value or "BREW" in value for value in labels)


def test_writer_figures_are_exported(logs):
    Client().get("/t/plain/")
    logs.lines("requests")  # written
    samples = scrape()
    written = samples["log_records_written_total"]
    assert written[(("file", "requests"),)] >= 2
    dropped = samples["log_records_dropped_total"]
    assert set(dropped) >= {(("reason", "queue_full"),), (("reason", "write_error"),)}
    assert (
        samples["log_queue_records"][()] >= 0
    )  # a gauge of this process's queue (summed over live ones)


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
        assert b"http_server_requests" in body and content_type.startswith("text/plain")
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

    def test_a_forwarded_header_does_not_open_the_door(self):
        client = Client(REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="127.0.0.1")
        assert client.get("/metrics").status_code == 404

    def test_the_bearer_token_opens_it_from_anywhere(self, settings, logs):
        token = "metrics-token-0123456789abcdef"
        settings.OBSERVABILITY = {"METRICS_TOKEN": token}
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
        settings.OBSERVABILITY = {"METRICS_TOKEN": "metrics-token-0123456789abcdef"}
        client = Client(REMOTE_ADDR="198.51.100.20", HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
        assert client.get("/metrics").status_code == 404

    def test_allowed_networks_include_ipv4_mapped_addresses(self, settings):
        settings.OBSERVABILITY = {"METRICS_ALLOWED_IPS": ["10.20.0.0/16"]}
        assert Client(REMOTE_ADDR="10.20.3.4").get("/metrics").status_code == 200
        assert Client(REMOTE_ADDR="::ffff:10.20.3.4").get("/metrics").status_code == 200
        assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 404

    def test_only_get_and_head(self):
        assert Client().post("/metrics").status_code == 405
        assert Client().head("/metrics").status_code == 200
