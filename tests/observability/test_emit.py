"""Lifecycle lines go out as Lines, without a LogRecord, only when nothing but handlers that
take Lines would see them; a Line made directly is the Line its record would give."""

from __future__ import annotations

import logging
import sys

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from observability.filters import attach_context
from observability.formatters import (
    ApiFormatter,
    DetailedFormatter,
    JsonFormatter,
    SimpleFormatter,
    VerboseFormatter,
)
from observability.http import emit
from observability.lines.line import CallSite, Line
from observability.output.records import RECORD_ID_ATTR
from observability.tracing.context import CONTEXT_FIELDS

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

FORMATTERS = [ApiFormatter, VerboseFormatter, DetailedFormatter, SimpleFormatter, JsonFormatter]
values = st.one_of(st.text(max_size=40), st.integers(), st.floats(allow_nan=False), st.none())
names = st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True).filter(
    lambda n: (
        n not in logging.LogRecord("", 0, "", 0, "", (), None).__dict__
        and n not in ("message", "asctime", "request", "server_time", "details")
        and n not in CONTEXT_FIELDS
    )
)


@pytest.mark.parametrize("formatter_class", FORMATTERS)
@given(
    message=st.text(max_size=60),
    context_values=st.lists(values, min_size=len(CONTEXT_FIELDS), max_size=len(CONTEXT_FIELDS)),
    fields=st.dictionaries(names, values, max_size=4),
    bound=st.dictionaries(names, values, max_size=3),
    level=st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR]),
)
@hsettings(max_examples=80, deadline=None)
def test_a_line_made_directly_renders_as_its_record(
    formatter_class, message, context_values, fields, bound, level
):
    """What the emitter builds without a record renders exactly as the record the logging
    API would have made for the same call (after our context filter)."""
    context = {**dict(zip(CONTEXT_FIELDS, context_values, strict=True)), **bound}
    frame = sys._getframe(0)
    direct = Line(
        1764237060.125,
        level,
        "billing.api",
        message,
        context,
        fields,
        site=CallSite.of_frame(frame.f_code, frame.f_lasti),
        process=42,
        thread="MainThread",
        record_id="k1x2y3z",
    )
    logger = logging.getLogger("billing.api")
    record = logger.makeRecord(
        "billing.api",
        level,
        frame.f_code.co_filename,
        direct.site.lineno,
        message,
        (),
        None,
        frame.f_code.co_name,
        {**fields, "_obs_redacted": True, RECORD_ID_ATTR: "k1x2y3z"},
    )
    record.created, record.process, record.threadName = 1764237060.125, 42, "MainThread"
    record.msecs = 125.0
    attach_context(record, context)
    formatter = formatter_class()
    assert formatter.render(direct) == formatter.format(record)


def test_the_default_configuration_takes_the_fast_path(logs):
    handlers = emit.plan(logging.getLogger("billing.api"), logging.INFO)
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
        assert emit.plan(logger, logging.INFO) is None
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
        assert emit.plan(logger, logging.INFO) is None
        Client().get("/t/plain/")
    finally:
        logger.removeFilter(keep)
    assert len(passed) == 2
    default = logging.getLogRecordFactory()
    logging.setLogRecordFactory(lambda *a, **k: default(*a, **k))
    try:
        assert emit.plan(logger, logging.INFO) is None
    finally:
        logging.setLogRecordFactory(default)
