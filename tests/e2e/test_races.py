"""Races through a real gunicorn and many parallel clients: the database decides every one.

The same tests run on the database of the run: a SQLite file in `make test`'s first pass,
the run's PostgreSQL test database in its second (`DATABASE_URL=postgres://...`). Each runs
against gunicorn with 4 sync workers and with 4 gthread workers x 4 threads, with real JWTs,
and checks the responses, the rows and the log lines, all by exact counts. The sandbox gateway
takes SANDBOX_GATEWAY_DELAY seconds per charge, as a real one does, so requests do overlap.

`pytest tests/e2e/test_races.py -s` prints one `race[...]` line of numbers per test.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest

from observability.logtrace import Record, parse_line
from tests.e2e.servers import Server, gunicorn, prepare_db, read_all, server_env
from tests.polling import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

WORKERS = 4
#: Events that depend on how fast the machine is, not on what the requests did.
TIMING_EVENTS = ("slow_query",)
GATEWAY_DELAY = "0.3"
SERVER_KINDS = {
    "sync": ("-w", str(WORKERS)),
    "gthread": ("-w", str(WORKERS), "--worker-class", "gthread", "--threads", "4"),
}


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database the pytest process is connected to."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{quote(settings_dict['NAME'], safe='')}"


@dataclass
class RaceDatabase:
    vendor: str
    url: str

    def rows(self, sql: str, *params) -> list[tuple]:
        """Rows straight from the database (a fresh connection each time: nothing left open)."""
        if self.vendor == "sqlite":
            con = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=20)
            try:
                return con.execute(sql.replace("%s", "?"), params).fetchall()
            finally:
                con.close()
        import psycopg

        with psycopg.connect(self.url, connect_timeout=10) as con:
            return con.execute(sql, params).fetchall()

    def scalar(self, sql: str, *params):
        return self.rows(sql, *params)[0][0]

    def execute(self, sql: str, *params) -> None:
        if self.vendor == "sqlite":
            con = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=20)
            try:
                with con:
                    con.execute(sql.replace("%s", "?"), params)
            finally:
                con.close()
            return
        import psycopg

        with psycopg.connect(self.url, connect_timeout=10) as con:
            con.execute(sql, params)

    def timestamp(self, moment: datetime) -> str:
        """A UTC datetime as this database's DateTimeField column holds it."""
        text = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return text if self.vendor == "sqlite" else text + "+00:00"


@pytest.fixture(scope="module")
def race_db(request, tmp_path_factory, django_db_blocker):
    """The run's database: its PostgreSQL test database (emptied afterwards), or a SQLite file."""
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        path = tmp_path_factory.mktemp("race-db") / "races.sqlite3"
        yield RaceDatabase("sqlite", f"sqlite:///{path}")
        return
    request.getfixturevalue("django_db_setup")
    name = connection.settings_dict["NAME"]
    assert name.startswith("test_"), f"refusing to race on a non-test database {name!r}"
    yield RaceDatabase("postgresql", database_url(connection.settings_dict))
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


@dataclass
class Race:
    server: Server
    db: RaceDatabase
    kind: str
    log_dir: Path
    token: str

    @property
    def label(self) -> str:
        return f"{self.db.vendor}/{self.kind}"

    def post(self, path: str, body: dict | None, request_id: str, **headers: str):
        status, response_headers, raw = self.server.request(
            "POST", path, body, self.token, headers={"X-Request-ID": request_id, **headers}
        )
        assert response_headers["X-Request-ID"] == request_id
        return status, response_headers, json.loads(raw) if raw else None

    def events(self, prefix: str) -> list[Record]:
        """Billing events of the requests whose ID starts with `prefix` (not the timing
        events a loaded machine adds: a query waiting on a row lock may be a slow_query)."""
        records = (parse_line(line) for line in read_all(self.log_dir, "billing_api.log"))
        return [
            r
            for r in records
            if r is not None
            and r.fields.get("request_id", "").startswith(prefix)
            and r.fields.get("event_type", TIMING_EVENTS[0]) not in TIMING_EVENTS
        ]

    def lines(self, name: str, prefix: str, text: str) -> list[str]:
        return [
            line
            for line in read_all(self.log_dir, name)
            if f"request_id={prefix}" in line and text in line
        ]

    def wait_events(self, prefix: str, expected: dict[str, int]) -> list[Record]:
        """The billing events of `prefix`'s requests once at least `expected` of each type
        are in billing_api.log itself: the writer groups a batch by file, so another file's
        lines (a terminal line in the requests file) say nothing of this one."""

        def logged() -> list[Record] | None:
            events = self.events(prefix)
            found = Counter(r.fields["event_type"] for r in events)
            return events if found >= Counter(expected) else None

        return wait_for(logged, f"{expected} events of {prefix}* in billing_api.log")

    def wait_lines(self, name: str, prefix: str, text: str, count: int) -> list[str]:
        """At least `count` lines of `prefix`'s requests holding `text` in the file `name`."""

        def written() -> list[str] | None:
            lines = self.lines(name, prefix, text)
            return lines if len(lines) >= count else None

        return wait_for(written, f"{count} {text!r} lines of {prefix}* in {name}")


@pytest.fixture(scope="module", params=sorted(SERVER_KINDS))
def race(request, race_db, tmp_path_factory):
    kind = request.param
    tmp = tmp_path_factory.mktemp(f"race-{kind}")
    env = server_env(tmp, DATABASE_URL=race_db.url, SANDBOX_GATEWAY_DELAY=GATEWAY_DELAY)
    prepare_db(env)
    server = gunicorn(tmp, *SERVER_KINDS[kind], env=env)
    try:
        token = server.token()
        # Warm every worker up (a cold one spends its first request importing the views),
        # so that the races below are between requests, not between imports.
        warm = burst(24, lambda n: server.request("GET", "/api/v1/plans/", token=token)[0])
        assert set(warm) == {200}
        yield Race(server, race_db, kind, Path(env["LOG_BASE_DIR"]), token)
    finally:
        server.stop()


def burst(count: int, call) -> list:
    """`count` clients, each on its own thread, released at the same instant."""
    barrier = threading.Barrier(count, timeout=30)

    def go(n: int):
        barrier.wait()
        return call(n)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(go, range(count), timeout=120))


def report(race: Race, scenario: str, **numbers) -> None:
    print(  # the closing note's numbers (`pytest -s`)
        f"race[{race.label}] {scenario}: workers={WORKERS}"
        + (" threads=4" if race.kind == "gthread" else "")
        + "".join(f" {key}={value}" for key, value in numbers.items())
    )


def test_same_idempotency_key_creates_one_payment_and_one_charge(race):
    prefix = f"idem-{race.kind}-"
    key = f"order-{race.kind}-{time.time_ns()}"
    body = {"amount": "42.00", "currency": "USD", "payment_method": "pm_card_visa"}

    def call(n: int):
        rid = f"{prefix}{n}"
        status, headers, data = race.post(
            "/api/v1/payments/", body, rid, **{"Idempotency-Key": key}
        )
        return rid, status, headers, data

    # Two waves of clients: the first overlaps the winner's charge, the second comes after it.
    results = burst(24, call)
    results += burst(16, lambda n: call(24 + n))
    statuses = Counter(status for _, status, _, _ in results)
    assert set(statuses) <= {200, 201, 409}, statuses
    assert statuses[201] == 1, statuses
    [(winner, _, _, created)] = [r for r in results if r[1] == 201]
    payment_id = created["id"]
    assert created["status"] == "succeeded"
    assert all(r[1] == 200 for r in results[24:]), "after the winner answered, all replay"
    for rid, status, headers, data in results:
        if status == 200:
            assert headers["Idempotent-Replayed"] == "true"
            assert (data["id"], data["status"]) == (payment_id, "succeeded"), data
        elif status == 409:
            assert data["error"]["code"] == "idempotency_key_in_use", data
            assert data["error"]["request_id"] == rid
            assert headers["Retry-After"] == "1"

    # The rows: one payment, made by the winning request, charged once.
    rows = race.db.rows(
        "SELECT id, status, request_id, gateway_reference FROM billing_payment"
        " WHERE idempotency_key = %s",
        key,
    )
    assert len(rows) == 1, rows
    assert rows[0][:3] == (payment_id, "succeeded", winner)
    assert rows[0][3].startswith("ch_")

    # The log: one creation, one charge, one event per refused request naming the winner.
    ids = [r[0] for r in results]
    logged = race.wait_events(
        prefix,
        {
            "payment_created": 1,
            "payment_succeeded": 1,
            "payment_replayed": statuses[200],
            "payment_in_flight_refused": statuses[409],
        },
    )
    race.wait_lines("billing_api.log", prefix, "payment_processing", 1)
    events = Counter(r.fields["event_type"] for r in logged)
    replays = [r for r in logged if r.fields["event_type"] == "payment_replayed"]
    refused = [r for r in logged if r.fields["event_type"] == "payment_in_flight_refused"]
    assert events["payment_created"] == 1
    assert events["payment_succeeded"] == 1
    # payment_processing is measured once per gateway charge, right after it
    assert len(race.lines("billing_api.log", prefix, "payment_processing")) == 1
    assert len(replays) == statuses[200]
    assert len(refused) == statuses[409]
    for record in replays + refused:
        assert record.fields["payment_id"] == str(payment_id), record.raw
        assert record.fields["winning_request_id"] == winner, record.raw
    assert {r.fields["request_id"] for r in replays + refused} == set(ids) - {winner}
    report(
        race,
        "idempotency",
        requests=len(results),
        clients=24,
        payments_created=len(rows),
        charges=1,
        replays=statuses[200],
        conflicts=statuses[409],
    )


def test_concurrent_subscriptions_to_one_plan_one_wins(race):
    prefix = f"sub-{race.kind}-"
    rounds, clients = 5, 8
    winners: list[tuple[str, int]] = []
    all_results = []
    for round_no in range(rounds):

        def call(n: int, round_no=round_no):
            rid = f"{prefix}{round_no}-{n}"
            status, _, data = race.post("/api/v1/subscriptions/", {"plan": "starter-monthly"}, rid)
            return rid, status, data

        results = burst(clients, call)
        all_results += results
        statuses = Counter(status for _, status, _ in results)
        assert statuses == {201: 1, 409: clients - 1}, statuses
        [(rid, _, data)] = [r for r in results if r[1] == 201]
        winners.append((rid, data["id"]))
        for loser_id, status, body in results:
            if status == 409:
                assert body["error"]["code"] == "conflict"
                assert "plan" in body["error"]["fields"]
                assert body["error"]["request_id"] == loser_id
        # Cancel the winner so that the next round races again.
        status, _, _ = race.post(
            f"/api/v1/subscriptions/{data['id']}/cancel/", None, f"cancel-{race.kind}-{round_no}"
        )
        assert status == 200

    rows = race.db.rows(
        "SELECT id, request_id, status FROM billing_subscription WHERE request_id LIKE %s"
        " ORDER BY id",
        prefix + "%",
    )
    assert [(row[1], row[0]) for row in rows] == winners
    assert {row[2] for row in rows} == {"cancelled"}

    expected = {
        "subscription_created": rounds,
        "subscription_duplicate_refused": rounds * (clients - 1),
    }
    events = race.wait_events(prefix, expected)
    assert Counter(r.fields["event_type"] for r in events) == expected
    winner_of_round = {rid.rsplit("-", 1)[0]: (rid, sub_id) for rid, sub_id in winners}
    for record in events:
        if record.fields["event_type"] == "subscription_duplicate_refused":
            rid, sub_id = winner_of_round[record.fields["request_id"].rsplit("-", 1)[0]]
            assert record.fields["winning_request_id"] == rid, record.raw
            assert record.fields["subscription_id"] == str(sub_id), record.raw
    report(
        race,
        "subscriptions",
        requests=len(all_results),
        clients=clients,
        rounds=rounds,
        subscriptions_created=len(rows),
        conflicts=rounds * (clients - 1),
    )


def test_concurrent_partial_refunds_never_exceed_the_payment(race):
    prefix = f"refund-{race.kind}-"
    status, _, payment = race.post(
        "/api/v1/payments/",
        {"amount": "100.00", "currency": "USD", "payment_method": "pm_card_visa"},
        f"pay-{race.kind}",
    )
    assert status == 201
    payment_id = payment["id"]

    def call(n: int):
        rid = f"{prefix}{n}"
        status, _, data = race.post(
            f"/api/v1/payments/{payment_id}/refund/", {"amount": "7.00"}, rid
        )
        return rid, status, data

    results = burst(40, call)
    statuses = Counter(status for _, status, _ in results)
    assert statuses == {201: 14, 400: 26}, statuses  # 14 x 7.00 = 98.00 of 100.00
    for rid, status, data in results:
        if status == 400:
            assert data["error"]["code"] == "invalid"
            assert "amount" in data["error"]["fields"]
            assert data["error"]["request_id"] == rid

    refunds = race.db.rows(
        "SELECT id, amount, request_id FROM billing_refund WHERE payment_id = %s ORDER BY id",
        payment_id,
    )
    assert len(refunds) == 14
    assert sum(Decimal(str(row[1])) for row in refunds) == Decimal("98.00")
    refunded = race.db.scalar(
        "SELECT amount_refunded FROM billing_payment WHERE id = %s", payment_id
    )
    assert Decimal(str(refunded)) == Decimal("98.00")
    winners = {row[2] for row in refunds}
    assert winners == {rid for rid, status, _ in results if status == 201}
    last_winner = refunds[-1][2]

    expected = {"refund_created": 14, "refund_refused": 26}
    events = race.wait_events(prefix, expected)
    assert Counter(r.fields["event_type"] for r in events) == expected
    for record in events:
        assert record.fields["payment_id"] == str(payment_id), record.raw
        if record.fields["event_type"] == "refund_refused":
            # Refused only once 98.00 was refunded: the last refund is the one that won.
            assert record.fields["winning_request_id"] == last_winner, record.raw
    report(
        race,
        "refunds",
        requests=len(results),
        clients=40,
        refunds_created=len(refunds),
        refunded="98.00/100.00",
        refused=statuses[400],
    )


def dead_worker_payment(race: Race, key: str, *, gateway_charged: bool) -> tuple[int, str]:
    """Commit what a worker SIGKILLed mid-charge an hour ago leaves: the payment `pending` past
    its lease, and at the gateway's side (its own table) the charge or nothing.
    tests/e2e/test_reconcile.py kills a real worker; here the rows are written directly so
    that many retries can race for one stale payment on every server kind and database."""
    from billing.services.request_hash import payment_request_hash

    body = {
        "amount": Decimal("30.00"),
        "currency": "USD",
        "description": "",
        "payment_method": "pm_card_visa",
    }
    gateway_key = f"pay_{key}"
    then = race.db.timestamp(datetime.now(UTC) - timedelta(hours=1))
    user_id = race.db.scalar("SELECT id FROM auth_user WHERE username = %s", "alice")
    race.db.execute(
        "INSERT INTO billing_payment (user_id, amount, currency, description, payment_method,"
        " status, failure_code, gateway_reference, amount_refunded, idempotency_key,"
        " request_hash, gateway_idempotency_key, attempted_at, created_at, request_id)"
        " VALUES (%s, %s, %s, %s, %s, 'pending', '', '', 0, %s, %s, %s, %s, %s, %s)",
        user_id,
        "30.00",
        "USD",
        "",
        "pm_card_visa",
        key,
        payment_request_hash(**body),
        gateway_key,
        then,
        then,
        f"{key}-dead",
    )
    if gateway_charged:
        race.db.execute(
            "INSERT INTO billing_sandboxcharge (idempotency_key, reference, amount, currency,"
            " payment_method, succeeded, failure_code, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, '', %s)",
            gateway_key,
            f"ch_{key}"[:64],
            "30.00",
            "USD",
            "pm_card_visa",
            True,
            then,
        )
    payment_id = race.db.scalar("SELECT id FROM billing_payment WHERE idempotency_key = %s", key)
    return payment_id, gateway_key


def test_concurrent_retries_of_a_stale_key_reconcile_once(race):
    """THREATS.md 8: a pending key never blocks forever, and its retries charge once."""
    prefix = f"stale-{race.kind}-"
    keys = {
        charged: f"{prefix}{'charged' if charged else 'uncharged'}-{time.time_ns()}"
        for charged in (True, False)
    }
    payments = {
        charged: dead_worker_payment(race, key, gateway_charged=charged)
        for charged, key in keys.items()
    }
    body = {"amount": "30.00", "currency": "USD", "payment_method": "pm_card_visa"}

    def call(n: int):
        charged = n % 2 == 0
        rid = f"{prefix}{n}"
        status, headers, data = race.post(
            "/api/v1/payments/", body, rid, **{"Idempotency-Key": keys[charged]}
        )
        return charged, rid, status, headers, data

    results = burst(24, call)
    statuses = Counter(status for _, _, status, _, _ in results)
    assert set(statuses) <= {200, 409}, statuses
    for charged, rid, status, headers, data in results:
        if status == 200:
            assert headers["Idempotent-Replayed"] == "true"
            assert (data["id"], data["status"]) == (payments[charged][0], "succeeded"), data
        else:
            assert data["error"]["code"] == "idempotency_key_in_use", data
            assert data["error"]["request_id"] == rid
            assert headers["Retry-After"] == "1"
    # The reconciling request answers too: each key has at least that one replay.
    assert {charged for charged, _, status, _, _ in results if status == 200} == {True, False}

    for charged, (payment_id, gateway_key) in payments.items():
        charges = race.db.rows(
            "SELECT reference FROM billing_sandboxcharge WHERE idempotency_key = %s", gateway_key
        )
        assert len(charges) == 1, charges  # the dead worker's charge, or the one made now
        if charged:
            assert charges[0][0] == f"ch_{keys[charged]}"[:64]
        row = race.db.rows(
            "SELECT status, gateway_reference FROM billing_payment WHERE id = %s", payment_id
        )
        assert row == [("succeeded", charges[0][0])]

    # Each request wrote one answer (a replay or a refusal) after any reconciliation of its own.
    ids = {rid for _, rid, _, _, _ in results}
    wait_for(
        lambda: (
            ids
            <= {
                r.fields["request_id"]
                for r in race.events(prefix)
                if r.fields["event_type"] in ("payment_replayed", "payment_in_flight_refused")
            }
        ),
        "every retry's event in billing_api.log",
    )
    events = race.events(prefix)
    reconciled = [r for r in events if r.fields["event_type"] == "payment_reconciled"]
    assert sorted((r.fields["payment_id"], r.fields["gateway"]) for r in reconciled) == sorted(
        [(str(payments[True][0]), "had_charged"), (str(payments[False][0]), "charged_now")]
    )
    assert all(r.fields["trigger"] == "retry" for r in reconciled)
    succeeded = Counter(
        r.fields["payment_id"] for r in events if r.fields["event_type"] == "payment_succeeded"
    )
    assert succeeded == {str(payments[True][0]): 1, str(payments[False][0]): 1}
    report(
        race,
        "stale keys",
        requests=len(results),
        clients=24,
        reconciled=len(reconciled),
        charges=2,
        replays=statuses[200],
        conflicts=statuses[409],
    )
