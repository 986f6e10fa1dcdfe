"""The per-request shortcuts write exactly what the general code writes.

Each shortcut (a str method instead of a pattern, one template for many fields, a
remembered masking) is held to the code it stands in for, on hostile input too.
"""

from __future__ import annotations

import re
import sys

import pytest
from django.http import HttpResponse
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from observability.compat import set_header
from observability.lines import textline
from observability.lines.line import CallSite
from observability.lines.textline import render_field, render_fields, render_message, render_value
from observability.masking import redaction
from observability.masking.escaping import UNSAFE_CHARS, VALUE_LIMIT, escape
from observability.masking.redaction import Redactor
from observability.memo import Memo

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
    monkeypatch.setattr(textline, "_rendered_texts", Memo(8))
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


def test_a_call_site_knows_the_line_it_was_made_on():
    def log_here():
        frame = sys._getframe(0)
        made = CallSite.of_frame(frame.f_code, frame.f_lasti)
        return made, frame.f_lineno - 1

    site, made_on = log_here()
    assert site.lineno == made_on
    assert site.funcName == "log_here"
    assert site.pathname == __file__


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

    from observability import json_formatter as formatters

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
