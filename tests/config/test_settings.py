"""Every environment variable is checked at start-up with a sentence naming it."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

SETTINGS = Path(__file__).resolve().parents[2] / "config" / "settings.py"


def load(monkeypatch, **env: str) -> dict:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return runpy.run_path(str(SETTINGS))


@pytest.mark.parametrize(
    ("name", "value", "constraint"),
    [
        ("LOG_QUEUE_SIZE", "-1", "must be an integer >= 1"),
        ("LOG_QUEUE_SIZE", "0", "must be an integer >= 1"),
        ("LOG_MAX_BYTES", "abc", "must be an integer >= 0"),
        ("LOG_BACKUP_COUNT", "-3", "must be an integer >= 0"),
        ("SLOW_REQUEST_THRESHOLD", "abc", "must be a number of seconds >= 0"),
        ("SLOW_REQUEST_THRESHOLD", "nan", "must be a number of seconds >= 0"),
        ("SLOW_REQUEST_THRESHOLD", "-1", "must be a number of seconds >= 0"),
        ("TRUSTED_PROXIES", "10.0.0.0/33", "comma-separated list of networks"),
        ("TRUSTED_PROXIES", "-1", "comma-separated list of networks"),
        ("LOG_LEVEL", "LOUD", "must be one of DEBUG, INFO"),
        ("LOG_FORMAT", "xml", "must be one of text, json, ecs"),
        ("DEBUG", "maybe", "must be a boolean"),
        ("LOG_CONSOLE", "2", "must be a boolean"),
    ],
)
def test_a_bad_value_stops_start_up_naming_variable_constraint_and_value(
    monkeypatch, name, value, constraint
):
    with pytest.raises(ImproperlyConfigured) as error:
        load(monkeypatch, **{name: value})
    message = str(error.value)
    assert name in message and constraint in message and repr(value) in message


def test_trusted_proxies_takes_the_readmes_network_form(monkeypatch):
    settings = load(monkeypatch, TRUSTED_PROXIES="10.0.0.0/8, 192.168.0.0/16")
    assert settings["OBSERVABILITY"]["TRUSTED_PROXIES"] == ["10.0.0.0/8", "192.168.0.0/16"]
    assert load(monkeypatch, TRUSTED_PROXIES="2")["OBSERVABILITY"]["TRUSTED_PROXIES"] == 2


def test_good_values_are_used(monkeypatch):
    settings = load(
        monkeypatch, LOG_QUEUE_SIZE="500", SLOW_REQUEST_THRESHOLD="0.25", LOG_LEVEL="debug"
    )
    assert settings["OBSERVABILITY"]["SLOW_REQUEST_THRESHOLD"] == 0.25
    handler = settings["LOGGING"]["handlers"]["requests_file"]
    assert handler["queue_size"] == 500


def test_build_logging_refuses_a_negative_queue():
    from observability import build_logging

    with pytest.raises(ValueError, match="queue_size"):
        build_logging(queue_size=-1)
