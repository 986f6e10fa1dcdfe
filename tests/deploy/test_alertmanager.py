"""deploy/alertmanager/ read by Debian's amtool: valid, and routing each alert where it belongs.

Inhibition (a target down holds its other alerts) is proved by a real Alertmanager in
tests/e2e/test_alerting.py.
"""

from __future__ import annotations

import pytest
import yaml

from tests.deploy.test_prometheus import alerts
from tests.deploy.tools import ALERTMANAGER_CONFIG, program, run


def test_the_configuration_is_valid():
    result = run(program("amtool"), "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 inhibit rules" in result.stdout and "3 receivers" in result.stdout


def receiver(**labels: str) -> str:
    result = run(
        program("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        *(f"{key}={value}" for key, value in labels.items()),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"alertname": "Watchdog", "severity": "none"}, "deadmans-switch"),
        ({"alertname": "BillingApiErrorBudgetBurnFast", "severity": "critical"}, "billing-pager"),
        ({"alertname": "BillingApiRouteErrors", "severity": "warning"}, "billing-tickets"),
        ({"alertname": "SomethingElse"}, "billing-tickets"),  # nothing is dropped
    ],
)
def test_alerts_are_routed_by_severity(labels, expected):
    assert receiver(**labels) == expected


def test_every_shipped_alert_reaches_a_receiver_for_its_severity():
    expected = {"critical": "billing-pager", "warning": "billing-tickets"}
    for name, rule in alerts().items():
        severity = rule["labels"]["severity"]
        got = receiver(alertname=name, severity=severity)
        assert got == expected.get(severity, "deadmans-switch"), (name, got)


def test_alerts_are_grouped_and_resolved_alerts_are_sent():
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    assert config["route"]["group_by"] == ["alertname", "job"]
    hooks = [hook for r in config["receivers"] for hook in r["webhook_configs"]]
    assert all(hook["url"].startswith("http") for hook in hooks)
    resolved = {r["name"]: r["webhook_configs"][0]["send_resolved"] for r in config["receivers"]}
    assert resolved == {"billing-pager": True, "billing-tickets": True, "deadmans-switch": False}
