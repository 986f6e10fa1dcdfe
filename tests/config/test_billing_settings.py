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
