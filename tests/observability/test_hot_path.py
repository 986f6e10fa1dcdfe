"""The per-request shortcuts write exactly what the general code writes.

Each shortcut (a str method instead of a pattern, one template for many fields, a
remembered masking) is held to the code it stands in for, on hostile input too.
"""

from __future__ import annotations

import logging
import re
import sys

import pytest
from django.http import HttpResponse
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from observability import fastpath, redaction, textline
from observability.escaping import UNSAFE_CHARS, VALUE_LIMIT, escape
from observability.fastpath import LineContext, PreparedLine
from observability.lifecycle import set_header
from observability.redaction import Redactor
from observability.textline import render_field, render_fields, render_message, render_value

# What the exact checks look for: a value is escaped for these, quoted for whitespace.
NEEDS_WORK = re.compile(f'[{UNSAFE_CHARS}\\s"=|]')
ALL_CHARACTERS = "".join(map(chr, range(sys.maxunicode + 1)))

hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(
        alphabet=st.sampled_from(' "=|\\\t\n\r\x00\x1b\x7f\x85\u2028\u202e\ufeff\xa0a1-'),
        max_size=20,
    ),
)
simple_values = st.one_of(
    hostile_text, st.integers(), st.floats(), st.none(), st.booleans(), st.tuples(st.integers())
)


def test_every_character_that_needs_work_is_unprintable_or_one_of_four():
    """The quick check (str.isprintable and four `in`) never lets through what the
    pattern would catch: over every code point."""
    printable = "".join(c for c in ALL_CHARACTERS if c.isprintable() and c not in ' "=|')
    assert NEEDS_WORK.search(printable) is None
    # ... and ordinary text takes the quick way.
    assert textline._plain_value("/api/v1/payments/12/é")


@given(value=hostile_text)
@hsettings(max_examples=300, deadline=None)
def test_a_value_is_written_as_it_is_only_when_the_pattern_finds_nothing(value):
    plain = bool(value) and NEEDS_WORK.search(value) is None and len(value) <= VALUE_LIMIT
    assert render_value(value) == (value if plain else textline._render_text(value))


@given(message=hostile_text)
@hsettings(max_examples=300, deadline=None)
def test_a_message_renders_as_escaping_it_would(message):
    assert render_message(message) == escape(message, 4096).replace("|", "\\x7c")


@given(
    pairs=st.lists(
        st.tuples(st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), simple_values),
        max_size=9,
    )
)
@hsettings(max_examples=400, deadline=None)
def test_fields_in_one_step_read_as_one_field_at_a_time(pairs):
    keys = tuple(key for key, _ in pairs)
    values = tuple(value for _, value in pairs)
    expected = "".join(render_field(key, value) for key, value in pairs)
    assert render_fields(keys, values) == expected
    assert render_fields(keys, values) == expected  # the template, remembered


def test_a_value_longer_than_the_cap_is_not_taken_as_plain():
    long = "a" * (VALUE_LIMIT + 1)
    assert render_fields(("k",), (long,)) == render_field("k", long) != f" k={long}"


def test_rendered_values_are_remembered_within_a_bound(monkeypatch):
    monkeypatch.setattr(textline, "_MEMO_SIZE", 8)
    monkeypatch.setattr(textline, "_rendered_texts", {})
    agents = [f"Agent {n} (X11)" for n in range(50)]
    for agent in agents:
        assert render_value(agent) == f'"{agent}"'
        assert len(textline._rendered_texts) <= 8
    assert render_value(agents[-1]) == f'"{agents[-1]}"'


def test_masked_texts_are_remembered_within_a_bound_and_read_the_same(monkeypatch):
    monkeypatch.setattr(redaction, "MEMO_SIZE", 16)
    fresh = Redactor(["password"])
    remembered = Redactor(["password"])
    texts = [f"/pay/4111 1111 1111 {1000 + n}?password=x{n}" for n in range(100)]
    for text in texts * 2:
        assert remembered.text(text, 64) == fresh.text(text, 64)
        assert remembered.text(text) == Redactor(["password"]).text(text)
        assert len(remembered._memo) <= 16
    assert "1111" not in remembered.text(texts[3], 64).replace("****1111", "")


def test_a_prepared_line_knows_the_line_it_was_made_on():
    logger = logging.getLogger("billing.api")

    def log_here():
        frame = sys._getframe(0)
        made = PreparedLine(logger, 20, "m", LineContext({}), {}, frame)
        return made, frame.f_lineno - 1, frame.f_lineno

    line, made_on, _ = log_here()
    assert line.lineno == made_on
    assert line.funcName == "log_here"
    assert line.pathname == __file__


def test_headers_set_directly_read_as_django_sets_them():
    direct, django = HttpResponse(), HttpResponse()
    set_header(direct, "X-Request-ID", "req-1")
    django["X-Request-ID"] = "req-1"
    assert direct.headers == django.headers
    assert direct["x-request-id"] == "req-1"
    assert direct.serialize_headers() == django.serialize_headers()


def test_a_response_without_django_headers_is_set_the_usual_way():
    class Plain(dict):
        pass

    response = Plain()
    set_header(response, "X-Request-ID", "req-2")
    assert response == {"X-Request-ID": "req-2"}


@pytest.mark.parametrize("value", ["", " ", "a b", 'a"b', "a=b", "a|b", "\x1b[31m", "é", "٣"])
def test_edge_values_take_the_exact_path(value):
    assert render_fields(("k",), (value,)) == render_field("k", value)


@given(
    status=st.integers(100, 599),
    duration=st.floats(min_value=0, max_value=1e6).map(lambda d: round(d, 6)),
    size=st.one_of(st.none(), st.integers(0, 2**40)),
    route=st.one_of(st.just("api/v1/payments/<int:pk>/"), st.just("-"), hostile_text),
    view=st.one_of(st.just("billing.views.PaymentViewSet"), hostile_text),
)
@hsettings(max_examples=300, deadline=None)
def test_the_terminal_fields_read_as_rendered_one_by_one(status, duration, size, route, view):
    keys = ("status", "duration", "response_size", "route", "view")
    values = (status, duration, size, route, view)
    assert fastpath.terminal_text(*values) == render_fields(keys, values)


header_text = st.one_of(
    hostile_text,
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,20}", fullmatch=True),  # an allowed ID
    st.just("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
)


class _User:
    is_authenticated = True

    def __init__(self, pk, name):
        self.pk, self.name = pk, name

    def get_username(self):
        return self.name


@given(
    request_id=header_text,
    traceparent=header_text,
    forwarded=st.one_of(hostile_text, st.sampled_from(["203.0.113.7", "fe80::1%eth0", "[::1]:80"])),
    method=st.one_of(st.sampled_from(["GET", "PROPFIND"]), hostile_text),
    path=hostile_text,
    user=st.one_of(st.none(), st.tuples(st.one_of(st.integers(), hostile_text), hostile_text)),
)
@hsettings(max_examples=200, deadline=None)
def test_a_context_as_begin_reads_it_renders_as_the_general_code(
    request_id, traceparent, forwarded, method, path, user
):
    """The lifecycle writes its context's IDs, IP and method as they are: the checks
    made when the request was read must leave nothing there that needs rendering."""
    from django.test import RequestFactory, override_settings

    from observability.context import CONTEXT_FIELDS, current, reset_context, set_context
    from observability.lifecycle import begin

    request = RequestFactory().get("/")
    request.method, request.path = method, "/" + path
    request.META.update(
        HTTP_X_REQUEST_ID=request_id, HTTP_TRACEPARENT=traceparent, HTTP_X_FORWARDED_FOR=forwarded
    )
    if user is not None:
        request.user = _User(*user)
    trusting = {
        "TRUST_INCOMING_REQUEST_ID": True,
        "TRUST_INCOMING_TRACEPARENT": True,
        "TRUSTED_PROXIES": 1,
    }
    with override_settings(OBSERVABILITY=trusting):
        token = set_context(begin(request).fields)
        try:
            context = current()
            values = tuple(context[key] for key in CONTEXT_FIELDS)
            assert fastpath.begun_text(context) == render_fields(CONTEXT_FIELDS, values)
        finally:
            reset_context(token)


json_values = st.recursive(
    st.one_of(hostile_text, st.integers(), st.floats(), st.none(), st.booleans()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(hostile_text, inner, max_size=3)
    ),
    max_leaves=8,
)


@given(value=json_values)
@hsettings(max_examples=200, deadline=None)
def test_json_lines_read_the_same_with_or_without_orjson(value):
    import json

    from observability import formatters

    formatter = formatters.JsonFormatter()
    data = {"message": "m", "value": formatters._json_value(value)}
    fast = formatter.jsonify_log_record(data)
    saved, formatters._orjson = formatters._orjson, None
    try:
        plain = formatter.jsonify_log_record(data)
    finally:
        formatters._orjson = saved
    # The same object (a float's exponent may be written 1e-8 or 1e-08), and valid JSON:
    strict = {"parse_constant": lambda token: pytest.fail(f"{token} is not JSON")}
    assert json.loads(fast, **strict) == json.loads(plain, **strict)
    assert "\n" not in fast and "\n" not in plain


def test_a_number_orjson_refuses_is_written_by_json():
    import json

    from observability.formatters import JsonFormatter

    line = JsonFormatter().jsonify_log_record({"big": 2**70})
    assert json.loads(line) == {"big": 2**70}


def test_a_serializer_given_in_the_settings_is_used_as_given():
    import json

    from observability.formatters import JsonFormatter

    def shout(data, **kwargs):
        return json.dumps(data, **kwargs).upper()

    line = JsonFormatter(json_serializer=shout).jsonify_log_record({"k": "v"})
    assert line == '{"K": "V"}'
    indented = JsonFormatter(json_indent=2).jsonify_log_record({"k": "v"})
    assert indented == '{\n  "k": "v"\n}'


def test_json_timestamps_are_utc_milliseconds_as_before():
    import time

    from observability.formatters import iso_timestamp

    for created in (0.0, 1764237060.041, 1764237060.9994, 2e9 + 0.5, 951782400.25):
        second = int(created)
        day_and_time = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        millis = int((created - second) * 1000)
        assert iso_timestamp(created) == f"{day_and_time}.{millis:03d}+00:00"


@given(
    message=hostile_text,
    fields=st.dictionaries(
        st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True).filter(lambda k: k != "message"),
        simple_values,
        max_size=4,
    ),
    path=hostile_text,
    level=st.sampled_from([20, 30, 40]),
)
@hsettings(max_examples=150, deadline=None)
def test_a_line_written_from_its_parts_reads_as_a_prepared_line(message, fields, path, level):
    """write_line gives simple text layouts the parts, others a PreparedLine: the same
    bytes either way, for every handler of the request logger (requests and errors)."""
    from observability.context import CONTEXT_FIELDS
    from observability.formatters import ApiFormatter, DetailedFormatter, SimpleFormatter

    logger = logging.getLogger("billing.api")
    context = dict.fromkeys(CONTEXT_FIELDS, "-") | {"path": path}
    shared = LineContext(context)
    submitted: list[tuple[object, str]] = []

    class Handler:
        def __init__(self, formatter, level=0):
            self.formatter, self.level = formatter, level

    handlers = (
        Handler(ApiFormatter()),
        Handler(SimpleFormatter()),
        Handler(DetailedFormatter(), 40),
    )

    def suspended():
        yield sys._getframe(0)

    paused = suspended()
    frame = next(paused)  # a frame that stays where it is (the place a line shows)
    original = fastpath.writer.submit
    fastpath.writer.submit = lambda handler, text: submitted.append((handler, text))
    try:
        fastpath.write_line(handlers, logger, level, message, shared, fields, frame)
    finally:
        fastpath.writer.submit = original
    for handler, text in submitted:
        line = PreparedLine(logger, level, message, shared, fields, frame)
        expected = handler.formatter.format_prepared(line)
        assert text.split(" ", 2)[2] == expected.split(" ", 2)[2]  # all but the time
    assert len(submitted) == 2 + (level >= 40)
