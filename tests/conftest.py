"""Shared fixtures: real log files in tmp_path, real JWTs, a real database (SQLite or PostgreSQL)."""

from __future__ import annotations

import logging
import logging.config
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import freezegun
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from config.logs import SEED_LOG_FILES, SEED_LOGGERS
from observability import build_logging
from observability.lines.textline import parse as parse_text_line
from observability.testing import (
    flush_logs,
    reset_context,
    reset_flood_control,
    reset_shared_counts,
)
from tests.polling import DEADLINE

#: The seed's five file names, by tag.
FILES = SEED_LOG_FILES

# A frozen clock must not freeze pytest's own (`--durations` would report the frozen
# epoch as a test's setup time).
freezegun.configure(extend_ignore_list=["_pytest.timing", "_pytest.runner"])


class LogDir:
    """The five files of one test: read them as a user would, after the queue drains."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def file(self, name: str) -> Path:
        return self.path / FILES.get(name, name)

    def lines(self, name: str) -> list[str]:
        assert flush_logs(DEADLINE), "the log writer did not drain"
        path = self.file(name)
        if not path.exists():
            return []
        return path.read_text(encoding="utf-8").splitlines()

    def text(self, name: str) -> str:
        return "\n".join(self.lines(name))

    def everything(self) -> str:
        assert flush_logs(DEADLINE)
        return "\n".join(
            p.read_text(encoding="utf-8", errors="replace")
            for p in sorted(self.path.glob("*.log*"))
        )

    def for_request(self, request_id: str, name: str = "requests") -> list[str]:
        return [line for line in self.lines(name) if f"request_id={request_id} " in line]


def configure_logs(path: Path, **kwargs) -> LogDir:
    flush_logs(DEADLINE)
    from django.conf import settings

    # The project's logger and file names (the seed's), as config/settings.py builds LOGGING;
    # a test's own flags over them.
    observability = {**settings.OBSERVABILITY, **kwargs.pop("observability", {})}
    options = {"base_dir": path, "debug": False, "console": False, **kwargs}
    options["observability"] = observability
    logging.config.dictConfig(build_logging(**options))
    return LogDir(path)


DB_FIXTURES = frozenset(
    {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `db` every test that touches the database: `make test` reruns `-m db` on PostgreSQL."""
    for item in items:
        if item.get_closest_marker("django_db") or DB_FIXTURES & set(
            getattr(item, "fixturenames", ())
        ):
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix) -> None:
    """One PostgreSQL test database per run (`test_<name>_<pid>`), so runs sharing a server
    never drop each other's database; pytest-django creates it and drops it at the end."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.postgresql":
        test = database.setdefault("TEST", {})
        test["NAME"] = f"{test.get('NAME') or 'test_' + database['NAME']}_{os.getpid()}"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's, then: on PostgreSQL, end the sessions that threads left open (an
    asgiref executor's connection is never closed by Django), so the drop at the end works."""
    yield
    from django.db import connection

    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture(autouse=True, scope="session")
def _session_logs(tmp_path_factory):
    configure_logs(tmp_path_factory.mktemp("session-logs"))


@pytest.fixture
def logs(tmp_path) -> LogDir:
    """Fresh log files in tmp_path for this test (text format, DEBUG off)."""
    directory = tmp_path / "logs"
    log_dir = configure_logs(directory)
    yield log_dir
    flush_logs(DEADLINE)


#: A slow-request (and slow-query) threshold no request of a test reaches (an hour), so that
#: a loaded machine adds no "Slow API request" or slow_query line to a test that counts lines.
#: A test of slowness sets its own threshold and makes the request slow with a frozen clock or
#: a view it holds.
NEVER_SLOW = 3600.0
#: Also the project's logger and file names (the seed's: the library's own are neutral), so a
#: test's own OBSERVABILITY writes where the project does.
NOT_SLOW = {
    **SEED_LOGGERS,
    "LOG_FILES": SEED_LOG_FILES,
    "SLOW_REQUEST_THRESHOLD": NEVER_SLOW,
    "SLOW_QUERY_THRESHOLD": NEVER_SLOW,
}


@pytest.fixture(autouse=True)
def _never_slow(settings):
    """The project's settings with the unreachable threshold; a test that replaces
    OBSERVABILITY starts its dict with **NOT_SLOW."""
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, **NOT_SLOW}


@contextmanager
def slow_threshold(settings, seconds: float) -> Iterator[None]:
    """SLOW_REQUEST_THRESHOLD is `seconds` for what runs inside only: a test of slowness makes
    its slow request under a frozen clock here, its other requests stay never slow."""
    before = settings.OBSERVABILITY
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, "SLOW_REQUEST_THRESHOLD": seconds}
    try:
        yield
    finally:
        settings.OBSERVABILITY = before


@pytest.fixture(autouse=True)
def _clean_context():
    reset_context()
    reset_flood_control()
    reset_shared_counts()
    yield
    reset_context()


@pytest.fixture(autouse=True)
def _fresh_cache(request, monkeypatch):
    """Each database test starts with an empty default cache (a table of the test database).

    The login throttles count attempts there: without this, logins of earlier tests would
    spend later tests' budgets. A plain test rolls its rows back anyway, but a transactional
    one's flush leaves the cache table (no model) as it was. Tests without the database
    never reach the cache.
    """
    if not (
        request.node.get_closest_marker("django_db") or DB_FIXTURES & set(request.fixturenames)
    ):
        # Flood control's shared budgets (FLOOD_CACHE, the database cache here) count in
        # this process instead: a test without the database cannot reach them.
        from observability.guard import flood_shared

        monkeypatch.setattr(flood_shared, "shared_cache", lambda: flood_shared.local_cache)
        return
    request.getfixturevalue("_django_db_helper")  # pytest-django's database access
    from django.core.cache import cache, caches
    from django.db import connection, connections

    from observability.conf import obs_settings

    def clear() -> None:
        cache.clear()
        # The IDs seen and the clients' counts of them: the end-to-end servers of the
        # PostgreSQL run commit theirs into this same database.
        for alias in (obs_settings.SEEN_IDS_CACHE, obs_settings.SEEN_IDS_QUOTA_CACHE):
            if alias:
                caches[alias].clear()

    if connection.vendor == "sqlite" or not connection.in_atomic_block:
        clear()
        return
    # PostgreSQL: the test's transaction is open (pytest-django's own autouse fixture comes
    # first), and rows it deletes stay locked until the test ends, so the real servers of the
    # end-to-end tests, on this same database, would wait for the test to end before adding
    # the same keys (a client's quota slots: ~30 s stalls, then timeouts). Cleared on a
    # connection of its own instead, committed at once.
    errors: list[BaseException] = []

    def clear_and_close() -> None:
        try:
            clear()
        except BaseException as exc:  # raised in the test's thread below
            errors.append(exc)
        finally:
            connections.close_all()

    worker = threading.Thread(target=clear_and_close, name="fresh-cache")
    worker.start()
    worker.join()
    if errors:
        raise errors[0]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("john_doe", password="s3cret-pass-123")


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user("mallory", password="other-pass-456")


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("admin", password="admin-pass-789", is_staff=True)


def token_for(user) -> str:
    return str(RefreshToken.for_user(user).access_token)


@pytest.fixture
def client_for():
    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
        return client

    return make


@pytest.fixture
def api(client_for, user) -> APIClient:
    return client_for(user)


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def plan(db):
    from billing.models import Plan

    return Plan.objects.create(
        name="Pro", code="pro-monthly", amount="29.00", currency="USD", interval="month"
    )


def parse_tokens(line: str) -> dict[str, str]:
    """The key=value fields of a text line, read by the same grammar that wrote them."""
    parsed = parse_text_line(line)
    assert parsed is not None, line
    return parsed.fields
