"""deploy/grafana/billing-api.json: the structure Grafana imports, and what it shows.

Grafana is not installed on these machines: its import is untested. The queries are
parsed by promtool (tests/deploy/test_prometheus.py) and answered by a real Prometheus
after real traffic (tests/e2e/test_alerting.py).
"""

from __future__ import annotations

import json
import re

from tests.deploy.tools import DASHBOARD

BUILTIN = {"__rate_interval", "__interval", "__range"}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_the_dashboard_has_what_grafana_needs_to_import_it():
    board = dashboard()
    assert board["title"] and board["uid"] and len(board["uid"]) <= 40
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    assert "id" not in board or board["id"] is None  # an import makes its own
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_panels_fit_the_grid_without_overlapping():
    taken: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] >= 1 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


def test_every_query_has_a_ref_id_the_datasource_variable_and_known_variables():
    board = dashboard()
    defined = {v["name"] for v in board["templating"]["list"]} | BUILTIN
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel.get("description"), panel["id"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        targets = panel["targets"]
        assert targets, panel["title"]
        assert len({t["refId"] for t in targets}) == len(targets)
        for target in targets:
            assert target["datasource"] == panel["datasource"]
            assert target["expr"].strip()
            used = set(re.findall(r"\$(\w+)", re.sub(r'"\$\{\d+\}[^"]*"', '""', target["expr"])))
            assert used <= defined, (panel["title"], used - defined)


def test_it_shows_requests_errors_latency_the_log_pipeline_security_and_the_log_disk():
    board = dashboard()
    rows = [panel["title"] for panel in board["panels"] if panel["type"] == "row"]
    assert rows == ["Requests", "Errors", "Latency", "Log pipeline", "Security", "Log disk",
                    "Processes"]  # fmt: skip
    exprs = " ".join(
        target["expr"] for panel in board["panels"] for target in panel.get("targets", [])
    )
    for needed in (
        "http_server_request_duration_seconds_count",
        "http_server_request_duration_seconds_bucket",
        "http_server_active_requests",
        'http_response_status_code=~"5.."',
        "histogram_quantile(0.99, sum by (le, http_route)",
        "observability_slow_requests_total",
        "observability_log_records_written_total",
        "observability_log_records_dropped_total",
        "observability_log_queue_records",
        "observability_security_events_total",
        "observability_log_filesystem_avail_bytes",
        "observability_log_filesystem_files_free",
        "process_cpu_seconds_total",
    ):
        assert needed in exprs, needed
