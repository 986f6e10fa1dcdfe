"""The gateway timeout and the pending-payment lease: checked at start-up, lease > timeout."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.config.test_settings import load


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        (
            {"BILLING_GATEWAY_TIMEOUT": "0"},
            "Environment variable BILLING_GATEWAY_TIMEOUT must be a number of seconds > 0 "
            "(such as 1.5), got '0'",
        ),
        (
            {"BILLING_PENDING_LEASE": "soon"},
            "Environment variable BILLING_PENDING_LEASE must be a number of seconds > 0 "
            "(such as 1.5), got 'soon'",
        ),
        (
            {"BILLING_GATEWAY_TIMEOUT": "30", "BILLING_PENDING_LEASE": "30"},
            "Environment variable BILLING_PENDING_LEASE must be longer than "
            "BILLING_GATEWAY_TIMEOUT (30.0 s): a request still talking to the gateway must "
            "keep its payment, got '30'",
        ),
    ],
)
def test_invariant_9_a_bad_gateway_timing_stops_start_up_naming_it(monkeypatch, env, sentence):
    with pytest.raises(ImproperlyConfigured) as error:
        load(monkeypatch, **env)
    assert str(error.value) == sentence


def test_gateway_timing_defaults_and_variables(monkeypatch):
    defaults = load(monkeypatch)
    assert (defaults["BILLING_GATEWAY_TIMEOUT"], defaults["BILLING_PENDING_LEASE"]) == (20.0, 60.0)
    given = load(monkeypatch, BILLING_GATEWAY_TIMEOUT="5", BILLING_PENDING_LEASE="6.5")
    assert (given["BILLING_GATEWAY_TIMEOUT"], given["BILLING_PENDING_LEASE"]) == (5.0, 6.5)


@pytest.mark.parametrize(
    "url",
    [
        "localhost:6379",
        "http://127.0.0.1:6379/0",
        "redis://:s3cretpass@127.0.0.1:notaport/0",
        "redis:///0",
    ],
)
def test_a_bad_broker_url_names_the_variable_and_never_shows_its_password(monkeypatch, url):
    with pytest.raises(ImproperlyConfigured) as error:
        load(monkeypatch, CELERY_BROKER_URL=url)
    message = str(error.value)
    assert message.startswith("Environment variable CELERY_BROKER_URL must be a broker URL")
    assert "s3cretpass" not in message


def test_broker_defaults_to_the_embedded_runner_and_takes_redis_or_rabbitmq(monkeypatch):
    defaults = load(monkeypatch)
    assert (defaults["CELERY_BROKER_URL"], defaults["BACKGROUND_EMBEDDED"]) == ("memory://", True)
    for url in ("redis://127.0.0.1:6379/0", "amqp://guest:guest@127.0.0.1:5672//"):
        given = load(monkeypatch, CELERY_BROKER_URL=url)
        assert (given["CELERY_BROKER_URL"], given["BACKGROUND_EMBEDDED"]) == (url, False)


def test_a_backoff_longer_than_the_visibility_timeout_stops_start_up(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="CELERY_VISIBILITY_TIMEOUT must be longer"):
        load(monkeypatch, WEBHOOK_BACKOFF_MAX="3000", CELERY_VISIBILITY_TIMEOUT="3600")
