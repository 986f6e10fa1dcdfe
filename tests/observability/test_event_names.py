"""The layer's neutral names (`log_event`, `app_logger`) beside the seed's billing ones.

The billing app keeps `log_billing_event` and `billing_logger` (the seed's code examples
run verbatim from `billing.logging_utils`); a host project that is not a billing API
writes `Event: ...` lines through `log_event`. Every helper names its caller as the
record's call site, so the errors and debug files show where the event came from.
"""

from __future__ import annotations

import logging

import pytest

import observability
from billing import logging_utils
from observability.output.loggers import get_logger


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept():
    handler = Keep()
    loggers = [
        get_logger(name) for name in ("EVENTS_LOGGER", "SECURITY_LOGGER", "PERFORMANCE_LOGGER")
    ]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler.records
    for logger in loggers:
        logger.removeHandler(handler)


def test_log_event_is_neutral_and_the_seed_keeps_its_words(kept):
    observability.log_event(event_type="invoice_sent", user_id=7, details={"invoice": 12})
    logging_utils.log_billing_event(event_type="payment_created", user_id=7, details={"amount": 5})
    messages = [record.getMessage() for record in kept]
    assert messages == [
        "Event: invoice_sent - User: 7, Details: {'invoice': 12}",
        "Billing Event: payment_created - User: 7, Details: {'amount': 5}",
    ]


def test_every_event_helper_names_its_caller_as_the_call_site(kept):
    observability.log_event(event_type="a")
    observability.log_billing_event(event_type="b")
    observability.log_security_event(event_type="c", severity="high")
    observability.log_performance_metric(metric_name="d", value=0.1)
    sites = {(record.funcName, record.filename) for record in kept}
    assert sites == {
        ("test_every_event_helper_names_its_caller_as_the_call_site", "test_event_names.py")
    }


def test_the_app_logger_and_the_seeds_billing_logger_are_one():
    assert logging_utils.billing_logger is observability.app_logger
    assert observability.app_logger.name == get_logger("APP_LOGGER").name
