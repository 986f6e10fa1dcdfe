"""Lifecycle lines prepared without a LogRecord read exactly as records would, and only when
nothing but our own handlers would see them."""

from __future__ import annotations

import logging
import sys

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from observability import fastpath
from observability.context import CONTEXT_FIELDS
from observability.fastpath import LineContext, PreparedLine
from observability.formatters import (
    ApiFormatter,
    DetailedFormatter,
    JsonFormatter,
    SimpleFormatter,
    VerboseFormatter,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

FORMATTERS = [ApiFormatter, VerboseFormatter, DetailedFormatter, SimpleFormatter, JsonFormatter]
values = st.one_of(st.text(max_size=40), st.integers(), st.floats(allow_nan=False), st.none())
names = st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True).filter(
    lambda n: (
        n not in logging.LogRecord("", 0, "", 0, "", (), None).__dict__
        and n not in ("message", "asctime", "request", "server_time")
        and n not in CONTEXT_FIELDS
    )
)


def record_like(line: PreparedLine, context: dict, fields: dict) -> logging.LogRecord:
    """The record the logging API would have made for the same line."""
    logger = logging.getLogger(line.name)
    record = logger.makeRecord(
        line.name,
        line.levelno,
        line.pathname,
        line.lineno,
        line.message,
        (),
        None,
        line.funcName,
        {**fields, "_obs_redacted": True},
    )
    record.created = line.created
    record.msecs = int((line.created - int(line.created)) * 1000) + 0.0
    record.process, record.threadName = line.process, line.threadName
    for key, value in context.items():
        record.__dict__.setdefault(key, value)
    return record


@pytest.mark.parametrize("formatter_class", FORMATTERS)
@given(
    message=st.text(max_size=60),
    context_values=st.lists(values, min_size=len(CONTEXT_FIELDS), max_size=len(CONTEXT_FIELDS)),
    fields=st.dictionaries(names, values, max_size=4),
    bound=st.dictionaries(names, values, max_size=3),
    level=st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR]),
)
@hsettings(max_examples=80, deadline=None)
def test_a_prepared_line_reads_exactly_as_a_record(
    formatter_class, message, context_values, fields, bound, level
):
    context = {**dict(zip(CONTEXT_FIELDS, context_values, strict=True)), **bound}
    line = PreparedLine(
        logging.getLogger("billing.api"),
        level,
        message,
        LineContext(context),
        fields,
        sys._getframe(0),
    )
    formatter = formatter_class()
    assert formatter.format_prepared(line) == formatter.format(record_like(line, context, fields))


def test_the_default_configuration_takes_the_fast_path(logs):
    handlers = fastpath.plan(logging.getLogger("billing.api"), logging.INFO)
    assert handlers is not None and len(handlers) >= 1


def test_a_users_handler_still_receives_the_lifecycle_records(logs):
    seen: list[logging.LogRecord] = []

    class Mine(logging.Handler):
        def emit(self, record):
            seen.append(record)

    logger = logging.getLogger("billing.api")
    mine = Mine()
    logger.addHandler(mine)
    try:
        assert fastpath.plan(logger, logging.INFO) is None
        response = Client().get("/t/plain/")
    finally:
        logger.removeHandler(mine)
    assert [r.getMessage().split(" - ")[0] for r in seen] == [
        "API Request started",
        "API Request completed",
    ]
    assert seen[0].request_id == response["X-Request-ID"]
    assert len(logs.for_request(response["X-Request-ID"])) == 2  # our file too


def test_a_logger_filter_or_a_record_factory_means_records(logs):
    logger = logging.getLogger("billing.api")
    passed: list[str] = []

    def keep(record):
        passed.append(record.getMessage())
        return True

    logger.addFilter(keep)
    try:
        assert fastpath.plan(logger, logging.INFO) is None
        Client().get("/t/plain/")
    finally:
        logger.removeFilter(keep)
    assert len(passed) == 2
    default = logging.getLogRecordFactory()
    logging.setLogRecordFactory(lambda *a, **k: default(*a, **k))
    try:
        assert fastpath.plan(logger, logging.INFO) is None
    finally:
        logging.setLogRecordFactory(default)
