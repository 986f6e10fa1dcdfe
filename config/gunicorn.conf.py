"""gunicorn settings for `make run`: drain the log queue when a worker exits; metrics shared.

Prometheus metrics need prometheus-client's multiprocess mode under several workers:
PROMETHEUS_MULTIPROC_DIR set before any worker imports prometheus_client. This file runs
in the master first, so it sets the variable (a new temporary directory unless one is
given), empties the directory when the server starts (counters of an earlier run would
be added in), tells prometheus_client when a worker dies, and removes the directory it
made when the server stops. Each worker publishes its process metrics (CPU, memory, open
files) from its start, whether or not it has served a request yet.
"""

import os
import shutil
import tempfile
from pathlib import Path

wsgi_app = "config.wsgi:application"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
accesslog = None  # the request log is ours: billing_api_requests.log
graceful_timeout = 10
# Only believe X-Forwarded-For/-Proto from these addresses (see README, "Client IP").
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OWNED_ENV = "BILLING_PROMETHEUS_DIR_OWNED"  # this file made the directory: remove it at exit
if not os.environ.get(MULTIPROC_ENV):
    os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="billing-prometheus-")
    os.environ[OWNED_ENV] = os.environ[MULTIPROC_ENV]


def on_starting(server):
    directory = Path(os.environ[MULTIPROC_ENV])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)


def post_worker_init(worker):
    # Each worker publishes its CPU, memory and open files from the start, busy or not
    # (prometheus-client's multiprocess mode has no process collector of its own).
    from observability.monitoring.metrics import start_process_metrics

    start_process_metrics()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, os.environ[MULTIPROC_ENV])


def worker_exit(server, worker):
    from observability.output.writer import shutdown_writer

    shutdown_writer()


def on_exit(server):
    owned = os.environ.get(OWNED_ENV)
    if owned and owned == os.environ.get(MULTIPROC_ENV):
        shutil.rmtree(owned, ignore_errors=True)
