"""The real programs that read deploy/: Debian's prometheus and prometheus-alertmanager.

`make test` installs them when missing (`make monitoring`). Without them a test that needs
one is skipped with a hint, except under CI=true where it fails.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
RULES = DEPLOY / "prometheus" / "rules"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
DASHBOARD = DEPLOY / "grafana" / "billing-api.json"
RULE_TESTS = Path(__file__).resolve().parent / "rules"

PROGRAMS = {
    "prometheus": ("/usr/bin/prometheus", "prometheus"),
    "promtool": ("/usr/bin/promtool", "prometheus"),
    "alertmanager": ("/usr/bin/prometheus-alertmanager", "prometheus-alertmanager"),
    "amtool": ("/usr/bin/amtool", "prometheus-alertmanager"),
}


def program(name: str) -> str:
    """The program's path; skipped (failed under CI=true) when it is not installed."""
    path, package = PROGRAMS[name]
    if os.access(path, os.X_OK):
        return path
    hint = f"{path} missing: apt-get install {package} (make monitoring does it as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(hint)
    pytest.skip(hint)
    raise AssertionError  # pytest.skip raised


def run(*args: str, stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a program; its output (stdout and stderr together) is in the result. The timeout
    only bounds a hang: a loaded machine can make promtool take many times its usual second."""
    return subprocess.run(
        args,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
