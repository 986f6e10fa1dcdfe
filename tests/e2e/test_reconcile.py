"""A gunicorn worker SIGKILLed in the middle of a slow charge (THREATS.md invariant 8).

The sandbox gateway takes SANDBOX_GATEWAY_DELAY seconds per call, a network round trip: the
charge is made at the provider half-way through, the answer arrives at the end. The test
stops (SIGSTOP, so what the worker has done is fixed before it is looked at) and then kills
(SIGKILL) the very worker that is charging, either in the first half (the gateway never
charged) or in the second (it charged and the answer was lost), and checks:

- (a) while the lease (BILLING_PENDING_LEASE) runs, a retry is a 409 with Retry-After, never
  a second charge, whether the worker is alive or dead;
- (b) after it, concurrent retries get the original outcome, reconciled with the gateway by
  one of them (c), and the gateway holds exactly one charge for the payment; or
  `manage.py payment_reconcile` settles it without any retry.

The sandbox gateway's memory is its own table in the database (the provider's side), shared
by both workers and outliving the killed one.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from observability.logtrace import parse_line
from tests.e2e.servers import ROOT, gunicorn, prepare_db, read_all, server_env
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

DELAY, TIMEOUT, LEASE = 4.0, 5.0, 6.0  # the charge happens 2 s into its 4 s round trip
BODY = {
    "amount": "25.00",
    "currency": "USD",
    "description": "kill",
    "payment_method": "pm_card_visa",
}


class Site:
    def __init__(self, tmp: Path) -> None:
        self.env = server_env(
            tmp,
            SANDBOX_GATEWAY_DELAY=str(DELAY),
            BILLING_GATEWAY_TIMEOUT=str(TIMEOUT),
            BILLING_PENDING_LEASE=str(LEASE),
        )
        prepare_db(self.env)
        self.db = self.env["DATABASE_URL"].removeprefix("sqlite:///")
        self.log_dir = Path(self.env["LOG_BASE_DIR"])
        self.server = gunicorn(tmp, "-w", "2", env=self.env)
        self.token = self.server.token()

    def rows(self, sql: str, *params) -> list[tuple]:
        con = sqlite3.connect(self.db, timeout=20)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def pay(self, key: str, request_id: str):
        """(status, headers, body), or None when the connection died with the worker."""
        try:
            status, headers, raw = self.server.request(
                "POST",
                "/api/v1/payments/",
                BODY,
                self.token,
                headers={"Idempotency-Key": key, "X-Request-ID": request_id},
            )
        except (OSError, http.client.HTTPException):
            return None
        return status, headers, json.loads(raw)

    def events(self, event_type: str, payment_id: int | None = None) -> list:
        records = (parse_line(line) for line in read_all(self.log_dir, "billing_api.log"))
        return [
            r
            for r in records
            if r
            and r.fields.get("event_type") == event_type
            and (payment_id is None or r.fields.get("payment_id") == str(payment_id))
        ]

    def reconciled(self, payment_id: int) -> list:
        return self.events("payment_reconciled", payment_id)

    def payment(self, key: str) -> tuple | None:
        rows = self.rows(
            "SELECT id, status, gateway_idempotency_key, attempted_at, gateway_reference"
            " FROM billing_payment WHERE idempotency_key = ?",
            key,
        )
        return rows[0] if rows else None

    def gateway_charges(self, gateway_key: str) -> list[tuple]:
        return self.rows(
            "SELECT reference FROM billing_sandboxcharge WHERE idempotency_key = ?", gateway_key
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = Site(tmp_path_factory.mktemp("reconcile"))
    try:
        yield site
    finally:
        site.server.stop()


def kill_mid_charge(site: Site, key: str, *, charged: bool) -> tuple[int, str]:
    """Start a payment, SIGKILL its worker before or after the gateway charged; (id, gateway key)."""
    request_id = f"{key}-first"
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(site.pay, key, request_id)

        def worker_pid() -> int | None:
            for event in site.events("payment_created"):
                if event.fields.get("request_id") == request_id:
                    return int(event.fields["process"])
            return None

        pid = wait_for(worker_pid, "the first request's payment_created event")
        payment_id, _, gateway_key, _, _ = site.payment(key)
        if charged:
            wait_for(lambda: site.gateway_charges(gateway_key), "the gateway's charge")
        # (a) The worker is still at the gateway: a retry is refused, not charged again.
        status, headers, body = site.pay(key, f"{key}-in-flight")
        assert (status, body["error"]["code"]) == (409, "idempotency_key_in_use"), body
        assert headers["Retry-After"] == "1"
        os.kill(pid, signal.SIGSTOP)  # freeze it: what it did is now what the check below sees
        assert len(site.gateway_charges(gateway_key)) == (1 if charged else 0)
        assert site.payment(key)[1] == "pending"
        os.kill(pid, signal.SIGKILL)
        assert first.result(timeout=30) is None  # its client only saw the connection close
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), "the killed worker gone")
    return payment_id, gateway_key


def wait_past_the_lease(site: Site, key: str) -> None:
    attempted_at = datetime.fromisoformat(site.payment(key)[3]).replace(tzinfo=UTC).timestamp()
    wait_for(lambda: time.time() > attempted_at + LEASE + 0.2, "the lease to run out", LEASE + 30)


@pytest.mark.parametrize("charged", [False, True], ids=["before-the-charge", "after-the-charge"])
def test_invariant_8_worker_killed_mid_charge_retries_get_one_charge(site, charged):
    key = f"kill-{'after' if charged else 'before'}"
    payment_id, gateway_key = kill_mid_charge(site, key, charged=charged)

    # (a) The lease still runs: the dead worker's request might have been alive.
    status, headers, _ = site.pay(key, f"{key}-early")
    assert (status, headers["Retry-After"]) == (409, "1")

    # (b, c) After it, 8 concurrent retries: one reconciles, every other is a 409 or a replay.
    wait_past_the_lease(site, key)
    barrier = threading.Barrier(8, timeout=30)

    def retry(n: int):
        barrier.wait()
        return site.pay(key, f"{key}-retry-{n}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(retry, range(8), timeout=120))
    statuses = Counter(r[0] for r in results)
    assert set(statuses) <= {200, 409}, statuses
    polls = iter(range(1000))
    final_ids: list[str] = []

    def replayed():
        final_ids.append(f"{key}-final-{next(polls)}")
        answer = site.pay(key, final_ids[-1])
        return answer if answer[0] == 200 else None

    final = wait_for(replayed, "a replay after the reconciliation", interval=0.5)
    for _, headers, body in [*(r for r in results if r[0] == 200), final]:
        assert headers["Idempotent-Replayed"] == "true"
        assert (body["id"], body["status"]) == (payment_id, "succeeded"), body

    [(reference,)] = site.gateway_charges(gateway_key)  # exactly one charge at the gateway
    _, status, _, _, stored_reference = site.payment(key)
    assert (status, stored_reference) == ("succeeded", reference)

    # Every retry wrote one answer event (a replay or a refusal), after any reconciliation of
    # its own: once all are in the file, so is everything the retries logged.
    asked = {f"{key}-retry-{n}" for n in range(8)} | set(final_ids)
    answers = ("payment_replayed", "payment_in_flight_refused")
    wait_for(
        lambda: (
            asked
            <= {e.fields["request_id"] for kind in answers for e in site.events(kind, payment_id)}
        ),
        "every retry's event in billing_api.log",
    )
    [reconciled] = site.reconciled(payment_id)
    assert reconciled.fields["gateway"] == ("had_charged" if charged else "charged_now")
    assert reconciled.fields["trigger"] == "retry"
    assert reconciled.fields["original_request_id"] == f"{key}-first"
    assert reconciled.fields["request_id"] in asked
    assert len(site.events("payment_succeeded", payment_id)) == 1
    replays = [
        e for e in site.events("payment_replayed", payment_id) if e.fields["request_id"] in asked
    ]
    assert len(replays) == statuses[200] + 1  # the burst's replays and the final one
    report = f"statuses={dict(statuses)} polls={len(final_ids)}"
    print(f"reconcile[{'after' if charged else 'before'}-the-charge] {report}")  # pytest -s


def test_invariant_8_worker_killed_mid_charge_settled_by_the_sweep_command(site):
    key = "kill-sweep"
    payment_id, gateway_key = kill_mid_charge(site, key, charged=True)
    wait_past_the_lease(site, key)
    done = subprocess.run(
        [sys.executable, "manage.py", "payment_reconcile"],
        cwd=ROOT,
        env=site.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [(reference,)] = site.gateway_charges(gateway_key)
    assert done.stdout.splitlines() == [
        f"payment {payment_id}: succeeded (the gateway had charged it: {reference})",
        "1 stale pending payment: 1 reconciled, 0 left pending",
    ]
    status, headers, body = site.pay(key, f"{key}-after")
    assert (status, headers["Idempotent-Replayed"], body["status"]) == (200, "true", "succeeded")
    assert len(site.gateway_charges(gateway_key)) == 1
    [event] = site.reconciled(payment_id)
    assert (event.fields["trigger"], event.fields["gateway"]) == ("sweep", "had_charged")
