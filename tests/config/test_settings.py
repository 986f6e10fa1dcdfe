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
        ("SAMPLE_RATE", "10%", "must be a number from 0 to 1"),
        ("SAMPLE_RATE", "1.5", "must be a number from 0 to 1"),
        ("FLOOD_LIMIT", "-1", "must be an integer >= 0"),
        ("FLOOD_WINDOW", "0", "must be a number of seconds > 0"),
        ("METRICS_ALLOWED_IPS", "localhost", "comma-separated list of addresses or networks"),
        ("CELERY_METRICS_ADDRESS", "9808", "must be an address host:port such as 127.0.0.1:9808"),
        ("CELERY_METRICS_ADDRESS", "127.0.0.1:0", "(port 1 to 65535; IPv6 as [::1]:9808)"),
        ("CELERY_METRICS_ADDRESS", "::1:9808", "must be an address host:port"),
    ],
)
def test_a_bad_value_stops_start_up_naming_variable_constraint_and_value(
    monkeypatch, name, value, constraint
):
    with pytest.raises(ImproperlyConfigured) as error:
        load(monkeypatch, **{name: value})
    message = str(error.value)
    assert name in message and constraint in message and repr(value) in message


def test_volume_variables_set_their_flags(monkeypatch):
    token = "scrape-token-0123456789abcdef"
    observability = load(
        monkeypatch,
        SAMPLE_RATE="0.1",
        FLOOD_LIMIT="0",
        FLOOD_WINDOW="30",
        METRICS_ALLOWED_IPS="10.0.0.0/8, 192.0.2.7",
        METRICS_TOKEN=token,
    )["OBSERVABILITY"]
    assert observability["SAMPLE_RATE"] == 0.1
    assert (observability["FLOOD_LIMIT"], observability["FLOOD_WINDOW"]) == (0, 30.0)
    assert observability["METRICS_ALLOWED_IPS"] == ["10.0.0.0/8", "192.0.2.7"]
    assert observability["METRICS_TOKEN"] == token
    from observability.conf import validate

    assert validate(observability) == []


def test_the_worker_metrics_address_sets_its_flag(monkeypatch):
    monkeypatch.delenv("CELERY_METRICS_ADDRESS", raising=False)
    assert load(monkeypatch)["OBSERVABILITY"]["CELERY_METRICS_ADDRESS"] is None
    for given, read in (
        ("", None),
        (" [::1]:9808 ", "[::1]:9808"),
        ("0.0.0.0:9808", "0.0.0.0:9808"),
    ):
        observability = load(monkeypatch, CELERY_METRICS_ADDRESS=given)["OBSERVABILITY"]
        assert observability["CELERY_METRICS_ADDRESS"] == read
    from observability.conf import validate

    assert validate(observability) == []


def test_a_short_metrics_token_is_refused_without_being_shown(monkeypatch):
    with pytest.raises(ImproperlyConfigured) as error:
        load(monkeypatch, METRICS_TOKEN="hunter2")
    message = str(error.value)
    assert "METRICS_TOKEN must be at least 16 printable characters" in message
    assert "got 7 characters (not shown)" in message and "hunter2" not in message


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
