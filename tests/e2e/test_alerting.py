"""The shipped monitoring, end to end: gunicorn -> Prometheus -> Alertmanager -> a webhook.

Debian's real prometheus and prometheus-alertmanager (`make test` installs them), started
here on free 127.0.0.1 ports with their own data directories (never the system's
services), scrape and evaluate every second, and group within a second. The rules are a
test copy of deploy/prometheus/rules/ with every window and `for` 60 times shorter
(promtool proves the shipped thresholds in tests/deploy/; this proves the wiring), the
configurations test copies of deploy/prometheus/prometheus.yml and
deploy/alertmanager/alertmanager.yml pointed at these processes.

Every wait is a bounded poll; the whole module takes well under 90 s.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.test_prometheus import VARIABLES, dashboard_exprs, seconds
from tests.deploy.tools import ALERTMANAGER_CONFIG, DASHBOARD, PROMETHEUS_CONFIG, RULES, program
from tests.e2e.browser import WAIT, chromium, save_screenshot
from tests.e2e.servers import Server, free_port, gunicorn, prepare_db, server_env
from tests.polling import poll_until

pytestmark = pytest.mark.e2e

SCALE = 60  # every window and `for` of the rules, 60 times shorter: 5m -> 5s, 1h -> 1m
SLOW = 0.2  # the server's SLOW_REQUEST_THRESHOLD here: a slow request costs 0.25 s


class Webhook:
    """Alertmanager's receiver: every notification POSTed, by path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with webhook.lock:
                    webhook.received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def alerts(self, path: str, status: str | None = None) -> list[dict]:
        """Every alert of every notification to `path` (with that status, if given)."""
        with self.lock:
            notifications = [body for got, body in self.received if got == path]
        return [
            alert
            for body in notifications
            for alert in body["alerts"]
            if status is None or alert["status"] == status
        ]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Program:
    """A Prometheus or Alertmanager process of this test, ready once /-/ready answers."""

    def __init__(self, args: list[str], port: int, log: Path) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.log = log.open("w+b")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        ready = poll(lambda: self.get("/-/ready") is not None or self.proc.poll(), 30)
        assert ready and self.proc.poll() is None, self.output()

    def get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as response:
                body = response.read()
        except (urllib.error.URLError, ConnectionError, OSError):
            return None
        return json.loads(body) if body.startswith((b"{", b"[")) else body

    def post(self, path: str, payload: Any) -> None:
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5):
            pass

    def query(self, expr: str) -> dict:
        answer = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert answer is not None, f"no answer to {expr}"
        return answer

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def poll(
    condition: Callable[[], Any], timeout: float, *, between: Callable[[], Any] | None = None
) -> Any:
    """condition() until it is truthy, at most `timeout` seconds; `between` runs between tries
    (traffic, instead of pausing). Returns the last value."""
    return poll_until(condition, timeout, interval=0.2, between=between)


def scaled(duration: str) -> str:
    return f"{max(seconds(duration) // SCALE, 1)}s"


def shortened_rules(directory: Path, free_ratio: float) -> list[Path]:
    """The shipped rules with windows and `for` SCALE times shorter, and the log disk's
    free-space threshold just above what this machine's file system has free."""
    directory.mkdir()
    written = []
    for path in sorted(RULES.glob("*.yml")):
        document = yaml.safe_load(path.read_text())
        for group in document["groups"]:
            for rule in group["rules"]:
                rule["expr"] = re.sub(
                    r"\[(\w+)\]", lambda m: f"[{scaled(m.group(1))}]", rule["expr"]
                )
                if "for" in rule:
                    rule["for"] = scaled(rule["for"])
                if rule.get("alert") == "BillingApiLogDiskAlmostFull":
                    assert rule["expr"].count("< 0.05") == 1, rule["expr"]
                    rule["expr"] = rule["expr"].replace("< 0.05", f"< {free_ratio + 0.01:.4f}")
        copy = directory / path.name
        copy.write_text(yaml.safe_dump(document, sort_keys=False))
        written.append(copy)
    return written


def panel_queries() -> list[tuple[str, str, str]]:
    """(row, panel title, query) of every dashboard target, its variables filled in."""
    board = json.loads(DASHBOARD.read_text())
    row = ""
    queries = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
            continue
        for target in panel["targets"]:
            expr = target["expr"]
            for name, value in {**VARIABLES, "$__rate_interval": "1m"}.items():
                expr = expr.replace(name, value)
            queries.append((row, panel["title"], expr))
    return queries


@dataclass
class Stack:
    server: Server
    token: str
    prometheus: Program
    alertmanager: Program
    webhook: Webhook

    def traffic(self, *, errors: int = 0, good: int = 4) -> None:
        for _ in range(good):
            status, _, _ = self.server.request("GET", "/api/v1/plans/", token=self.token)
            assert status == 200
        for _ in range(errors):
            status, _, _ = self.server.request("POST", "/t/failing-charge/", {}, token=self.token)
            assert status == 500

    def scrape(self) -> dict[str, float]:
        status, _, body = self.server.request("GET", "/metrics")
        assert status == 200
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
            if not sample.labels
        }


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    prometheus_bin, alertmanager_bin = program("prometheus"), program("alertmanager")
    tmp = tmp_path_factory.mktemp("alerting")
    env = server_env(
        tmp, DJANGO_SETTINGS_MODULE="tests.e2e.settings", SLOW_REQUEST_THRESHOLD=str(SLOW)
    )
    prepare_db(env)
    webhook = Webhook()
    started: list[Any] = [webhook]
    try:
        server = gunicorn(tmp, "-w", "2", env=env)
        started.append(server)
        token = server.token()
        log_dir = Path(env["LOG_BASE_DIR"])
        stat = os.statvfs(log_dir)
        free_ratio = stat.f_bavail / stat.f_blocks

        am_port, prom_port = free_port(), free_port()
        am_config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
        am_config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
        for route in am_config["route"]["routes"]:
            route.update({key: "1s" for key in ("group_wait", "group_interval") if key in route})
            route["repeat_interval"] = "1h"
        for receiver in am_config["receivers"]:
            for hook in receiver["webhook_configs"]:
                hook["url"] = webhook.url + urllib.parse.urlsplit(hook["url"]).path
        (tmp / "alertmanager").mkdir()
        am_file = tmp / "alertmanager" / "alertmanager.yml"
        am_file.write_text(yaml.safe_dump(am_config))
        alertmanager = Program(
            [
                alertmanager_bin,
                f"--config.file={am_file}",
                f"--storage.path={tmp / 'alertmanager' / 'data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",  # no gossip port: a single instance
            ],
            am_port,
            tmp / "alertmanager.out",
        )
        started.append(alertmanager)

        (tmp / "prometheus").mkdir()
        rules = shortened_rules(tmp / "prometheus" / "rules", free_ratio)
        prom_config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
        prom_config["global"].update(
            scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s"
        )
        prom_config["rule_files"] = [str(path) for path in rules]
        prom_config["alerting"]["alertmanagers"][0]["static_configs"] = [
            {"targets": [f"127.0.0.1:{am_port}"]}
        ]
        # The web's job only (the rules are its); the worker's has no worker here.
        (job,) = [j for j in prom_config["scrape_configs"] if j["job_name"] == "billing-api"]
        job["static_configs"] = [{"targets": [f"127.0.0.1:{server.port}"]}]
        prom_config["scrape_configs"] = [job]
        prom_file = tmp / "prometheus" / "prometheus.yml"
        prom_file.write_text(yaml.safe_dump(prom_config))
        prometheus = Program(
            [
                prometheus_bin,
                f"--config.file={prom_file}",
                f"--storage.tsdb.path={tmp / 'prometheus' / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                # Firing alerts are sent again every second, not every minute: one fired
                # before the notifier found Alertmanager is not held back for a minute.
                "--rules.alert.resend-delay=1s",
            ],
            prom_port,
            tmp / "prometheus.out",
        )
        started.append(prometheus)
        yield Stack(server, token, prometheus, alertmanager, webhook)
    finally:
        for part in reversed(started):
            part.stop()
        shutil.rmtree(tmp / "prometheus" / "data", ignore_errors=True)


def test_a_burst_of_5xx_pages_through_alertmanager_and_resolves_after_it(stack):
    def fired() -> list[dict]:
        return [
            alert
            for alert in stack.webhook.alerts("/alerts/page", "firing")
            if alert["labels"]["alertname"] == "BillingApiErrorBudgetBurnFast"
        ]

    stack.traffic(good=20)
    # The burst lasts until the page arrives (at most 45 s): scrape, rules, `for`, grouping.
    alerts = poll(fired, 45, between=lambda: stack.traffic(errors=3, good=3))
    assert alerts, stack.prometheus.output()
    labels = alerts[0]["labels"]
    assert labels["job"] == "billing-api" and labels["severity"] == "critical"
    assert labels["slo"] == "availability"
    assert "manage.py logtrace --errors" in alerts[0]["annotations"]["runbook"]

    def resolved() -> list[dict]:
        return [
            alert
            for alert in stack.webhook.alerts("/alerts/page", "resolved")
            if alert["labels"]["alertname"] == "BillingApiErrorBudgetBurnFast"
        ]

    # Successes only from now on: the 5 s window (5m, scaled) clears, the alert resolves.
    assert poll(resolved, 45, between=lambda: stack.traffic(good=3)), stack.prometheus.output()


def test_the_disk_alert_fires_when_its_threshold_is_above_the_free_space(stack):
    def fired() -> list[dict]:
        return [
            alert
            for alert in stack.webhook.alerts("/alerts/page", "firing")
            if alert["labels"]["alertname"] == "BillingApiLogDiskAlmostFull"
        ]

    alerts = poll(fired, 45)
    assert alerts, stack.prometheus.output()
    assert alerts[0]["labels"]["instance"] == f"127.0.0.1:{stack.server.port}"


def test_the_watchdog_reaches_the_dead_mans_switch(stack):
    alerts = poll(lambda: stack.webhook.alerts("/alerts/watchdog", "firing"), 30)
    assert {alert["labels"]["alertname"] for alert in alerts} == {"Watchdog"}
    assert not [
        alert
        for path in ("/alerts/page", "/alerts/ticket")
        for alert in stack.webhook.alerts(path)
        if alert["labels"]["alertname"] == "Watchdog"
    ]


def test_every_rule_and_dashboard_query_is_answered_after_real_traffic(stack):
    for _ in range(3):
        status, _, _ = stack.server.request("GET", "/t/slow-report/?s=0.25", token=stack.token)
        assert status == 200
    stack.traffic(errors=1, good=10)

    def scraped() -> bool:
        answer = stack.prometheus.query("sum(observability_slow_requests_total)")
        return bool(answer["data"]["result"])

    assert poll(scraped, 30, between=lambda: stack.traffic(good=2))

    def rules_evaluated() -> list[dict]:
        groups = stack.prometheus.get("/api/v1/rules")["data"]["groups"]
        found = [rule for group in groups for rule in group["rules"]]
        return (
            found
            if found and all(rule.get("lastEvaluation", "0001")[:4] != "0001" for rule in found)
            else []
        )

    rules = poll(rules_evaluated, 30)
    assert len(rules) == 27
    assert all(rule["health"] == "ok" for rule in rules), [
        (rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"
    ]
    # The shipped expressions themselves (unscaled windows) answer without an error.
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                answer = stack.prometheus.query(rule["expr"])
                assert answer["status"] == "success", (rule, answer)
    # Every dashboard query; those of the request panels return data.
    empty = []
    for row, title, expr in panel_queries():
        answer = stack.prometheus.query(expr)
        assert answer["status"] == "success", (title, expr, answer)
        if not answer["data"]["result"]:
            empty.append((row, title, expr))
    request_rows = {"Requests", "Errors", "Latency"}
    assert not [item for item in empty if item[0] in request_rows], empty
    assert len(dashboard_exprs()) > 20


def test_prometheus_graphs_the_dashboards_request_panels(stack, tmp_path):
    """Prometheus's own graph page (Grafana is not on these machines) draws two of the
    dashboard's queries after traffic: requests per second and p90 latency, by route."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    queries = panel_queries()
    shown = [
        next(expr for _, title, expr in queries if title == "Requests per second by route"),
        next(expr for _, _, expr in queries if expr.startswith("histogram_quantile(0.9,")),
    ]

    for _ in range(2):  # a slow route, for the latency graph
        status, _, _ = stack.server.request("GET", "/t/slow-report/?s=0.25", token=stack.token)
        assert status == 200

    def answered() -> bool:
        return all(stack.prometheus.query(expr)["data"]["result"] for expr in shown)

    assert poll(answered, 30, between=lambda: stack.traffic(good=3))
    # The graphs span the seconds Prometheus has scraped: one `up` sample a second.
    (scrapes,) = stack.prometheus.query('count_over_time(up{job="billing-api"}[10m])')["data"][
        "result"
    ]
    params = {}
    for number, expr in enumerate(shown):
        params.update({f"g{number}.expr": expr, f"g{number}.tab": "0"})
        params[f"g{number}.range_input"] = f"{int(scrapes['value'][1]) + 2}s"
    for b in chromium(tmp_path):
        b.set_window_size(1280, 1900)
        b.get(f"{stack.prometheus.base}/classic/graph?" + urllib.parse.urlencode(params))

        def legends(d: Any) -> list[str]:
            return [e.text for e in d.find_elements(By.CSS_SELECTOR, ".legend")]

        # Both graphs drawn, their legends naming the routes the traffic hit.
        WebDriverWait(b, WAIT).until(
            lambda d: (
                len(d.find_elements(By.CSS_SELECTOR, ".graph_area svg path")) >= 2
                and len(legends(d)) == 2
                and all('http_route="api/v1/plans/"' in text for text in legends(d))
                and 'http_route="t/slow-report/"' in legends(d)[1]
            )
        )
        inputs = b.find_elements(By.CSS_SELECTOR, "textarea.expression_input")
        assert [field.get_attribute("value") for field in inputs] == shown
        assert not [e.text for e in b.find_elements(By.CSS_SELECTOR, ".alert-danger") if e.text]
        # The whole query in view, and no caret, in the picture.
        b.execute_script(
            "for (const t of document.querySelectorAll('textarea')) {"
            " t.style.height = t.scrollHeight + 2 + 'px'; }"
            " document.activeElement.blur();"
        )
        save_screenshot(b, "prometheus-dashboard-queries.png")


def test_the_process_metrics_of_both_workers_are_summed(stack):
    master = stack.server.proc.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 2, children
    page = os.sysconf("SC_PAGE_SIZE")

    def resident(pid: str) -> int:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page

    def summed() -> bool:
        samples = stack.scrape()
        total = sum(resident(pid) for pid in children)
        reported = samples.get("process_resident_memory_bytes", 0)
        return (
            samples.get("observability_worker_processes") == 2
            and abs(reported - total) < 0.2 * total
            and reported > 1.5 * max(resident(pid) for pid in children)
            and samples.get("process_cpu_seconds_total", 0) > 0
            and samples.get("process_open_fds", 0) > 10
        )

    assert poll(summed, 30, between=lambda: stack.traffic(good=2)), stack.scrape()


def test_a_target_down_holds_back_the_rest_of_its_targets_alerts(stack):
    """Sent straight to the real Alertmanager, under a job of their own."""
    job = "billing-api-inhibition-test"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def alert(name: str, instance: str, severity: str = "critical") -> dict:
        labels = {"alertname": name, "job": job, "instance": instance, "severity": severity}
        return {"labels": labels, "startsAt": now, "annotations": {"summary": name}}

    stack.alertmanager.post(
        "/api/v2/alerts",
        [
            alert("BillingApiTargetDown", "down:8000"),
            alert("BillingApiLogDiskAlmostFull", "down:8000"),
            alert("BillingApiLogDiskAlmostFull", "up:8000"),
        ],
    )

    def disk_notified() -> list[dict]:
        return [
            a
            for a in stack.webhook.alerts("/alerts/page")
            if a["labels"]["job"] == job
            and a["labels"]["alertname"] == "BillingApiLogDiskAlmostFull"
        ]

    # The group (alertname, job) is notified with the up target's alert only.
    notified = poll(disk_notified, 20)
    assert {a["labels"]["instance"] for a in notified} == {"up:8000"}
    assert poll(
        lambda: [
            a
            for a in stack.webhook.alerts("/alerts/page")
            if a["labels"]["job"] == job and a["labels"]["alertname"] == "BillingApiTargetDown"
        ],
        20,
    )
    states = {
        (a["labels"]["alertname"], a["labels"]["instance"]): a["status"]
        for a in stack.alertmanager.get(
            "/api/v2/alerts?" + urllib.parse.urlencode({"filter": f'job="{job}"'})
        )
    }
    assert states[("BillingApiLogDiskAlmostFull", "down:8000")]["state"] == "suppressed"
    assert states[("BillingApiLogDiskAlmostFull", "down:8000")]["inhibitedBy"]
    assert states[("BillingApiLogDiskAlmostFull", "up:8000")]["state"] == "active"
    assert states[("BillingApiTargetDown", "down:8000")]["state"] == "active"
