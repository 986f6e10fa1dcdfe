"""The Celery worker's own /metrics end to end: a real prefork worker (two processes, one
task per child, so each child exits after its task) on the tests' own Redis, serving
CELERY_METRICS_ADDRESS from its main process with a fresh PROMETHEUS_MULTIPROC_DIR.

The tasks run in the children; their counts are read over HTTP from the main process, and
stay after the child that counted them has exited. A real Prometheus (Debian's, on a free
127.0.0.1 port, the shipped billing-worker job with the bearer token) scrapes it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.tools import PROMETHEUS_CONFIG, program
from tests.e2e.celery_site import Redis, Worker, need_redis
from tests.e2e.servers import BIN, ROOT, free_port, prepare_db, server_env
from tests.e2e.test_alerting import Program
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

TOKEN = "worker-scrape-token-0123456789"
CARD = "4111111111111111"
TASKS = "celery_task_duration_seconds"


@dataclass
class Site:
    redis: Redis
    worker: Worker
    port: int
    env: dict[str, str]
    metrics_dir: Path
    tmp: Path

    @property
    def logs(self) -> Path:
        return Path(self.env["LOG_BASE_DIR"])

    def text(self, name: str) -> str:
        path = self.logs / name
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def get(
        self, token: str | None = TOKEN, method: str = "GET", port: int | None = None
    ) -> tuple[int, bytes]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port or self.port}/metrics", method=method
        )
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def counts(self) -> dict[tuple[str, str], float]:
        """{(task_name, outcome): runs} from the worker's /metrics."""
        status, body = self.get()
        assert status == 200, body
        return {
            (sample.labels["task_name"], sample.labels["outcome"]): sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
            if sample.name == f"{TASKS}_count"
        }

    def alive(self) -> bool:
        if self.worker.proc.poll() is not None:
            raise AssertionError(f"the worker exited: {self.worker.output()}")
        return True


def serving(site: Site) -> bool:
    try:
        return site.alive() and site.get()[0] == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    need_redis()
    tmp = tmp_path_factory.mktemp("worker-metrics")
    redis = Redis(tmp)
    worker = None
    try:
        metrics_dir = tmp / "worker-prometheus"
        metrics_dir.mkdir()
        port = free_port()
        env = server_env(
            tmp,
            DJANGO_SETTINGS_MODULE="tests.e2e.settings_celery",
            CELERY_BROKER_URL=redis.url,
            CELERY_METRICS_ADDRESS=f"127.0.0.1:{port}",
            PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
            # Loopback is not allowed here, so that a refusal can be tried from 127.0.0.1:
            # the scrapes of these tests carry the token.
            METRICS_ALLOWED_IPS="192.0.2.1",
            METRICS_TOKEN=TOKEN,
        )
        prepare_db(env)
        worker = Worker(env, tmp, beat=False, name="metrics")
        made = Site(redis, worker, port, env, metrics_dir, tmp)
        wait_for(lambda: serving(made), "the worker's /metrics", timeout=90)
        yield made
    finally:
        if worker is not None:
            worker.stop()
        redis.stop()
    with pytest.raises(ConnectionRefusedError):  # the worker stopped: its port is closed
        socket.create_connection(("127.0.0.1", port), timeout=10).close()


def test_tasks_run_by_the_children_are_counted_on_the_main_process_metrics(site, tmp_path):
    before = site.counts()
    (tmp_path / "release").write_text("")  # probe.hold returns at once
    client = Celery("e2e-client", broker=site.redis.url)
    try:
        client.send_task("probe.hold", kwargs={"directory": str(tmp_path)})
        client.send_task("probe.fail", kwargs={"card": CARD})
    finally:
        client.close()
    succeeded, failed = ("probe.hold", "succeeded"), ("probe.fail", "failed")

    def counted() -> dict | None:
        now = site.alive() and site.counts()
        done = now.get(succeeded, 0) > before.get(succeeded, 0)
        return now if done and now.get(failed, 0) > before.get(failed, 0) else None

    after = wait_for(counted, "both tasks on the worker's /metrics")
    assert after[succeeded] == before.get(succeeded, 0) + 1
    assert after[failed] == before.get(failed, 0) + 1
    # The task ran in a pool child, not in the process that serves /metrics ...
    child = int(next(tmp_path.glob("pid-*")).name.removeprefix("pid-"))
    assert child != site.worker.proc.pid
    # ... which leaves after its one task (--max-tasks-per-child 1): its counts stay, its
    # live gauges (memory, open files, the log queue) are marked dead.
    wait_for(lambda: not os.path.exists(f"/proc/{child}"), "the child's exit")
    assert site.counts()[succeeded] == after[succeeded]
    assert (site.metrics_dir / f"histogram_{child}.db").exists()
    assert list(site.metrics_dir.glob(f"gauge_live*_{child}.db")) == []
    status, body = site.get()
    assert status == 200 and CARD.encode() not in body


def test_a_client_without_the_token_gets_a_404_and_the_refusal_is_audited(site):
    status, body = site.get(token=None)
    assert status == 404 and TASKS.encode() not in body
    status, body = site.get(token=TOKEN + "x")
    assert status == 404 and TASKS.encode() not in body
    assert site.get(method="POST")[0] == 405
    assert site.get(method="HEAD") == (200, b"")

    def refusals() -> list[str]:
        return [
            line
            for line in site.text("billing_api_security.log").splitlines()
            if "metrics_access_refused" in line
        ]

    found = wait_for(lambda: len(refusals()) >= 2 and refusals(), "the two refusals")
    assert any("reason=address_not_allowed " in line for line in found)
    assert any("reason=wrong_token " in line for line in found)
    assert all("ip=127.0.0.1 " in line and "path=/metrics " in line for line in found)
    assert TOKEN not in "\n".join(p.read_text(errors="replace") for p in site.logs.iterdir())


def test_a_real_prometheus_scrapes_the_worker_with_the_shipped_job(site, tmp_path):
    binary = program("prometheus")
    client = Celery("e2e-client", broker=site.redis.url)
    try:
        client.send_task("probe.fail", kwargs={"card": CARD})
    finally:
        client.close()
    shipped = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    (job,) = [job for job in shipped["scrape_configs"] if job["job_name"] == "billing-worker"]
    token_file = tmp_path / "worker.token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    job["static_configs"] = [{"targets": [f"127.0.0.1:{site.port}"]}]
    job["authorization"] = {"type": "Bearer", "credentials_file": str(token_file)}
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [job],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prom_port = free_port()
    prometheus = Program(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        prom_port,
        tmp_path / "prometheus.out",
    )
    try:
        expr = f'{TASKS}_count{{job="billing-worker", task_name="probe.fail", outcome="failed"}}'

        def scraped() -> list:
            site.alive()
            return prometheus.query(expr)["data"]["result"]

        (series,) = wait_for(scraped, "Prometheus' scrape of the worker", timeout=60)
        assert float(series["value"][1]) >= 1
        up = prometheus.query('up{job="billing-worker"}')["data"]["result"]
        assert [float(s["value"][1]) for s in up] == [1.0]
    finally:
        prometheus.stop()


def test_a_taken_port_is_one_error_line_and_that_worker_still_runs_its_tasks(site, tmp_path):
    queue = f"taken-{uuid.uuid4().hex[:8]}"
    (tmp_path / "own-prometheus").mkdir()
    env = {
        **site.env,
        "CELERY_QUEUE": queue,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "own-prometheus"),
    }  # CELERY_METRICS_ADDRESS: the first worker's port, taken
    worker = Worker(env, tmp_path, beat=False, name=queue)
    client = Celery("e2e-client", broker=site.redis.url)
    try:
        ready = f"{queue}@"

        def started() -> bool:
            if worker.proc.poll() is not None:
                raise AssertionError(f"the worker exited: {worker.output()}")
            general = site.text("billing_api.log").splitlines()
            return any(ready in line and "ready." in line for line in general)

        wait_for(started, "the second worker is ready", timeout=90)
        (tmp_path / "release").write_text("")
        result = client.send_task("probe.hold", kwargs={"directory": str(tmp_path)}, queue=queue)
        wait_for(
            lambda: any(
                f"task_id={result.id} " in line and "Task probe.hold succeeded" in line
                for line in site.text("billing_api.log").splitlines()
            ),
            "the task run by the worker without metrics",
        )
    finally:
        worker.stop()
        client.close()
    address = site.env["CELERY_METRICS_ADDRESS"]
    errors = [
        line
        for line in site.text("billing_api_errors.log").splitlines()
        if "Worker metrics not served" in line
    ]
    assert len(errors) == 1, errors
    assert f"cannot listen on {address} (Address already in use)" in errors[0]
    assert serving(site)  # the first worker's /metrics is untouched


def test_a_bad_address_stops_the_worker_naming_the_variable_the_rule_and_the_value(tmp_path):
    env = server_env(tmp_path, CELERY_METRICS_ADDRESS="127.0.0.1:99999")
    done = subprocess.run(
        [str(BIN / "celery"), "-A", "config", "worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert (
        "Environment variable CELERY_METRICS_ADDRESS must be an address host:port such as "
        "127.0.0.1:9808 (port 1 to 65535; IPv6 as [::1]:9808), or empty for none, "
        "got '127.0.0.1:99999'"
    ) in output, output
