"""Fixtures of the end-to-end tests: a migrated database and a server environment per test."""

from __future__ import annotations

import pytest

from tests.e2e.servers import prepare_db, server_env


@pytest.fixture
def env(tmp_path):
    """The environment a server process runs with: its own database and log directory."""
    environment = server_env(tmp_path)
    prepare_db(environment)
    return environment
