"""deploy/prometheus/ read by Debian's promtool: the configuration, the rules, their unit tests.

promtool proves the shipped thresholds (tests/deploy/rules/*.test.yml: every alert fires
just over its threshold, stays silent at or under it, and resolves); the end-to-end test
(tests/e2e/test_alerting.py) proves the wiring with a real Prometheus and Alertmanager.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from tests.deploy.tools import (
    DASHBOARD,
    PROMETHEUS_CONFIG,
    ROOT,
    RULE_TESTS,
    RULES,
    program,
    run,
)

RULE_FILES = sorted(RULES.glob("*.yml"))
TEST_FILES = sorted(RULE_TESTS.glob("*.test.yml"))
#: Dashboard variables as the checks fill them in (Grafana does it for a real dashboard).
VARIABLES = {
    "$__rate_interval": "1m",
    "$instance": ".*",
    "$route": ".*",
    "$job": "billing-api",
}


def rules() -> list[dict]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def alerts() -> dict[str, dict]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def fill(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    parts = re.findall(r"(\d+)([smhdw])", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)


def test_the_configuration_and_its_rule_files_are_valid():
    result = run(program("promtool"), "check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout


def test_the_rules_are_valid():
    result = run(program("promtool"), "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda path: path.name)
def test_the_rule_unit_tests_pass(path):
    result = run(program("promtool"), "test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_proved_firing_silent_and_resolving():
    """Each alert has a unit test where it fires, one where it stays silent throughout
    (just under its threshold), and one where it fires and then resolves."""
    proofs: dict[str, set[str]] = {name: set() for name in alerts()}
    for path in TEST_FILES:
        for test in yaml.safe_load(path.read_text())["tests"]:
            by_alert: dict[str, list[tuple[int, bool]]] = {}
            for case in test.get("alert_rule_test", []):
                assert case["alertname"] in proofs, f"{path.name}: unknown {case['alertname']}"
                fired = bool(case.get("exp_alerts"))
                by_alert.setdefault(case["alertname"], []).append(
                    (seconds(case["eval_time"]), fired)
                )
            for name, cases in by_alert.items():
                if any(fired for _, fired in cases):
                    proofs[name].add("fires")
                    first = min(t for t, fired in cases if fired)
                    if any(t > first and not fired for t, fired in cases):
                        proofs[name].add("resolves")
                else:
                    proofs[name].add("silent")
    missing = {
        name: {"fires", "silent", "resolves"} - found
        for name, found in proofs.items()
        if name != "Watchdog" and {"fires", "silent", "resolves"} - found
    }
    assert not missing, missing
    assert "fires" in proofs["Watchdog"]


def test_every_alert_says_what_where_and_what_to_look_at_first():
    for name, rule in alerts().items():
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert annotations.get(key, "").strip(), (name, key)
        assert rule["labels"]["severity"] in {"critical", "warning", "none"}, name
        if name != "Watchdog":  # our job's series, directly or through a job: recording rule
            assert 'job="billing-api"' in rule["expr"] or "job:" in rule["expr"], name
    for name in (
        "BillingApiErrorBudgetBurnFast",
        "BillingApiErrorBudgetBurnSlow",
        "BillingApiRouteErrors",
        "BillingApiLatencyBudgetBurnFast",
        "BillingApiLatencyBudgetBurnSlow",
        "BillingApiRouteSlow",
        "BillingApiFailedLoginSpike",
    ):
        runbook = alerts()[name]["annotations"]["runbook"]
        assert "manage.py logtrace" in runbook and "/ops/requests/?" in runbook, name


def test_the_required_alerts_exist():
    names = set(alerts())
    assert {
        "BillingApiErrorBudgetBurnFast",  # 5xx ratio, two windows
        "BillingApiErrorBudgetBurnSlow",
        "BillingApiRouteErrors",
        "BillingApiLatencyBudgetBurnFast",  # slow-request ratio, two windows
        "BillingApiRouteSlow",  # p99 over the slow threshold
        "BillingApiFailedLoginSpike",
        "BillingApiSecurityEventSpike",
        "BillingApiLogRecordsDropped",
        "BillingApiLogDiskFillingUp",  # predict_linear
        "BillingApiLogDiskAlmostFull",
        "BillingApiTargetDown",
        "BillingApiTargetAbsent",  # absent()
        "Watchdog",
    } <= names
    assert "predict_linear(" in alerts()["BillingApiLogDiskFillingUp"]["expr"]
    assert alerts()["BillingApiTargetAbsent"]["expr"].startswith("absent(")
    assert alerts()["Watchdog"]["expr"] == "vector(1)"


def divisors(expr: str) -> list[str]:
    """The right operand of every division in a PromQL expression (quoted strings skipped)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    found = []
    for match in re.finditer(r"/", text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("("):
            depth = 0
            for i, char in enumerate(rest):
                depth += {"(": 1, ")": -1}.get(char, 0)
                if depth == 0:
                    found.append(rest[: i + 1])
                    break
        else:
            found.append(re.match(r"[^\s)]+", rest).group(0))
    return found


@pytest.mark.parametrize("source", ["rules", "dashboard"], ids=["rules", "dashboard"])
def test_every_ratio_is_guarded_against_zero_traffic(source):
    """Every division is by a number, or by a denominator kept only where it is above 0."""
    exprs = [rule["expr"] for rule in rules()] if source == "rules" else dashboard_exprs()
    checked = 0
    for expr in exprs:
        for divisor in divisors(expr):
            checked += 1
            guarded = re.fullmatch(r"\(.*>\s*0\)", divisor, re.DOTALL)
            assert guarded or re.fullmatch(r"[\d.]+", divisor), (divisor, expr)
    assert checked >= 6


def test_every_dashboard_query_is_valid_promql(tmp_path):
    """promtool parses each query (variables filled in) as a recording rule."""
    exprs = dashboard_exprs()
    assert len(exprs) >= 20
    check = tmp_path / "dashboard-queries.yml"
    check.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "dashboard",
                        "rules": [
                            {"record": f"dashboard:query_{n}", "expr": fill(expr)}
                            for n, expr in enumerate(exprs)
                        ],
                    }
                ]
            }
        )
    )
    result = run(program("promtool"), "check", "rules", str(check))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_the_exposition_passes_promtool_lint(logs):
    from django.test import Client

    from observability import log_security_event
    from observability.monitoring.metrics import render

    Client().get("/health/")
    log_security_event(event_type="login_failed", severity="warning")
    body, _ = render()
    result = run(program("promtool"), "check", "metrics", stdin=body.decode())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "http_server_request_duration_seconds_bucket" in body.decode()


def test_the_multiprocess_exposition_passes_promtool_lint(tmp_path):
    """As under gunicorn: values from files, the process metrics of this layer's own."""
    code = (
        "import django; django.setup()\n"
        "from observability.monitoring import metrics\n"
        "metrics.start_process_metrics()\n"
        "metrics.observe_request('GET', 'api/v1/plans/', 200, 0.01)\n"
        "import sys; sys.stdout.write(metrics.render()[0].decode())\n"
    )
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "multiproc"),
        "LOG_BASE_DIR": str(tmp_path / "logs"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    exposition = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "process_resident_memory_bytes" in exposition
    assert "observability_worker_processes 1.0" in exposition
    result = run(program("promtool"), "check", "metrics", stdin=exposition)
    assert result.returncode == 0, result.stdout + result.stderr
