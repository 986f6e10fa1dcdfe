"""Make the database fail on purpose: for real where the database can, else the driver's error."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from django.db import OperationalError, connection, transaction

from tests.e2e.servers import free_port

# kind: (SQLSTATE, PostgreSQL's condition name)
SQLSTATES = {
    "serialization": ("40001", "serialization_failure"),
    "deadlock": ("40P01", "deadlock_detected"),
    "lock_timeout": ("55P03", "lock_not_available"),
}
KINDS = (*SQLSTATES, "unreachable")


def fail_database(kind: str) -> None:
    """Raise what Django raises when the database fails as `kind` says.

    PostgreSQL raises the SQLSTATE itself (in a savepoint, so the test's transaction lives
    on); SQLite has no serialization failures or deadlocks, so there the psycopg error is
    raised as Django's cause. "unreachable" connects to a closed port (PostgreSQL) or a file
    that cannot be opened (SQLite); "lock_timeout" on SQLite is a real "database is locked".
    """
    if kind == "unreachable":
        with connection.wrap_database_errors:
            if connection.vendor == "postgresql":
                import psycopg

                psycopg.connect(host="127.0.0.1", port=free_port(), dbname="x", connect_timeout=3)
            else:
                sqlite3.connect("file:/nonexistent-dir/billing.sqlite3?mode=rw", uri=True)
    if kind == "lock_timeout" and connection.vendor == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "locked.sqlite3"
            holder = sqlite3.connect(path, isolation_level=None)
            waiter = sqlite3.connect(path, isolation_level=None, timeout=0.05)
            try:
                holder.execute("BEGIN IMMEDIATE")
                with connection.wrap_database_errors:
                    waiter.execute("BEGIN IMMEDIATE")
            finally:
                waiter.close()
                holder.close()
    sqlstate, name = SQLSTATES[kind]
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"DO $$ BEGIN RAISE EXCEPTION 'raised by the test' USING ERRCODE = '{name}'; END $$"
            )
    import psycopg

    cause = psycopg.errors.lookup(sqlstate)("raised by the test")
    raise OperationalError(str(cause)) from cause
