"""The `logtrace` console script, installed with the package into a fresh virtual
environment: it finds the project's settings from the directory's manage.py, reads
LOG_BASE_DIR and OBSERVABILITY['LOG_FILES'] from them, and never sets Django up (the
settings below name an app that does not exist: django.setup() would fail)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import pytest

from tests.observability.loglines import T0, json_line, request_lines, write

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = """
LOG_BASE_DIR = {logs!r}
SECRET_KEY = "console-test-only-key-0123456789abcdef"
INSTALLED_APPS = ["no_such_app_anywhere"]
OBSERVABILITY = {{"LOG_FILES": {{"requests": "shop_requests.log", "general": "shop.log"}}}}
"""
MANAGE = """#!/usr/bin/env python
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopsettings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    """A new virtual environment with the package (a wheel built from this checkout)
    installed; its dependencies seen through a .pth file (no network, no copies)."""
    work = tmp_path_factory.mktemp("console")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("config", "billing", "observability"):
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    wheels = work / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(wheels),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (wheel,) = wheels.glob("billing_api-*.whl")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return venv


def test_logtrace_runs_from_a_fresh_venv_with_the_projects_settings(fresh_venv, tmp_path):
    script = fresh_venv / "bin" / "logtrace"
    assert script.is_file()
    logs = tmp_path / "logs"
    project = tmp_path / "shop"
    project.mkdir()
    (project / "manage.py").write_text(MANAGE)
    (project / "shopsettings.py").write_text(SETTINGS.format(logs=str(logs)))
    rid = f"console-{uuid.uuid4().hex[:8]}"
    write(
        logs / "shop_requests.log",
        request_lines(rid, T0, status=402, duration=0.5, user_id=7, slow=True, fmt="json"),
    )
    write(
        logs / "shop.log",
        [json_line(T0, "Billing Event: payment_failed", request_id=rid, user_id=7)],
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    done = subprocess.run(
        [str(script), rid, "--level", "WARNING"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (
        f"request {rid}\n  GET /api/v1/plans/  status=402 duration=0.5s SLOW\n  user=alice (ID 7)"
        in done.stdout
    )
    assert "records: requests: 3, general: 1" in done.stdout
    assert "Slow API request detected" in done.stdout and "payment_failed" not in done.stdout
    as_json = subprocess.run(
        [str(script), rid, "--json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    data = json.loads(as_json.stdout)
    assert data["summary"]["records"] == {"requests": 3, "general": 1}
    assert (data["summary"]["status"], data["summary"]["duration"], data["summary"]["user_id"]) == (
        402,
        0.5,
        7,
    )
    # --help names the command as people type it; an unknown ID exits 1 with one line.
    assert subprocess.run(
        [str(script), "--help"], cwd=project, env=env, capture_output=True, text=True
    ).stdout.startswith("usage: logtrace ")
    missing = subprocess.run(
        [str(script), "nope"], cwd=project, env=env, capture_output=True, text=True
    )
    assert missing.returncode == 1 and missing.stderr.startswith("logtrace: nothing in ")


def test_settings_that_do_not_load_are_one_line_and_exit_2(fresh_venv, tmp_path):
    project = tmp_path / "broken"
    project.mkdir()
    (project / "manage.py").write_text(MANAGE)
    (project / "shopsettings.py").write_text(
        "from django.core.exceptions import ImproperlyConfigured\n"
        "raise ImproperlyConfigured('SECRET_KEY is not set')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    done = subprocess.run(
        [str(fresh_venv / "bin" / "logtrace"), "some-id"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr == "logtrace: the settings could not be read: SECRET_KEY is not set\n"


def test_without_a_project_it_reads_the_environments_log_dir(fresh_venv, tmp_path):
    """No manage.py and no settings module: LOG_BASE_DIR from the environment, the default
    file names; a reader that stops early (`| head -1`) gets no traceback."""
    logs = tmp_path / "logs"
    rid = f"noproject-{uuid.uuid4().hex[:8]}"
    # The library's neutral names: no project here names its own.
    write(logs / "app_requests.log", request_lines(rid, T0, status=201, slow=True))
    many = [json_line(T0, f"step {n} " + "x" * 100, request_id=rid) for n in range(1500)]
    write(logs / "app.log", many)  # a story longer than a pipe holds
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    env["LOG_BASE_DIR"] = str(logs)
    done = subprocess.run(
        ["sh", "-c", f'"$0" {rid} | head -1', str(fresh_venv / "bin" / "logtrace")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"request {rid}\n", "")
