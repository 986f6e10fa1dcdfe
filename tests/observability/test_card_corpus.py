"""A property corpus: a Luhn-valid number, however written, never survives into a log.

Numbers of 13-19 digits, each digit in any digit system, raw or as a backslash escape,
with arbitrary runs of separators between digits, go through every channel a client
controls: path (and Django's escaped `Not Found:` line), query values and keys, user
agent, Host header, log messages, extra fields, event details, exception text, DEBUG's
SQL, the console. After each example no file and no stderr holds more than four digits
of the number. The same corpus with masking off is the positive control.
"""

from __future__ import annotations

import json
import re
import tempfile
import unicodedata
from pathlib import Path
from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.conftest import NOT_SLOW, configure_logs
from tests.polling import DEADLINE

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

DIGIT_ZEROS = [0x30, 0xFF10, 0x660, 0x6F0, 0x966, 0x9E6, 0xE50, 0x1D7CE, 0x1D7D8, 0x1D7F6]
SEPARATORS = (
    " \u00a0\u2002\u2007\u2009\u200a\u3000\u200b\u00ad\u2060\ufeff\u200c"
    ".-/_\t\n\\,:;*+~|\u2014\u00b7()[]#'\"%"
    "\u3164\uffa0\u115f\u1160"  # letters that render as nothing (the Hangul fillers)
)
BLANK = frozenset("\u115f\u1160\u3164\uffa0")
OPEN, CLOSE = "QQ", "ZZ"  # letters around the number: they end any digit run


def luhn_complete(body: list[int]) -> list[int]:
    total = 0
    for index, value in enumerate(reversed(body)):
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return [*body, (10 - total % 10) % 10]


@st.composite
def card_numbers(draw) -> tuple[str, str]:
    """(the digits in ASCII, the number as a client writes it)."""
    length = draw(st.integers(13, 19))
    body = draw(st.lists(st.integers(0, 9), min_size=length - 1, max_size=length - 1))
    digits = luhn_complete([draw(st.integers(1, 9)), *body[1:]])
    parts = []
    for position, value in enumerate(digits):
        char = chr(draw(st.sampled_from(DIGIT_ZEROS)) + value)
        if draw(st.integers(0, 9)) == 0:  # now and then written as an escape
            code = ord(char)
            char = f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
        parts.append(char)
        if position < len(digits) - 1:
            parts.append(draw(st.text(alphabet=SEPARATORS, max_size=3)))
    return "".join(map(str, digits)), "".join(parts)


_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|x([0-9a-fA-F]{2})|([ntr]))")


def digit_runs_after_marker(text: str) -> list[str]:
    """For each OPEN marker in `text`: the digits (decoded) that follow it before a letter."""
    runs = []
    for start in (m.end() for m in re.finditer(OPEN, text)):
        digits, position = [], start
        while position < len(text):
            match = _ESCAPE.match(text, position)
            if match:
                code = match.group(1) or match.group(2) or match.group(3)
                char = chr(int(code, 16)) if code else " "  # \n \t \r: a separator
                position = match.end()
            else:
                char = text[position]
                position += 1
            if unicodedata.category(char) == "Nd":
                digits.append(str(unicodedata.digit(char)))
            elif char.isalnum() and char not in BLANK:  # a blank letter reads as a gap
                break
        runs.append("".join(digits))
    return runs


def longest_common_run(run: str, digits: str) -> int:
    best = 0
    for size in range(len(digits), 0, -1):
        if any(digits[i : i + size] in run for i in range(len(digits) - size + 1)):
            return size
    return best


def send_everywhere(written: str) -> None:
    marked = OPEN + written + CLOSE
    client = Client(raise_request_exception=False)
    client.get(f"/t/channels/?c={quote(marked)}", HTTP_USER_AGENT=marked)
    client.get(f"/t/nope/{quote(marked)}/")  # Django's own escaped "Not Found:" line
    client.get(f"/t/plain/?{quote(marked)}")  # a query key
    client.get("/t/plain/", HTTP_HOST=marked)  # DisallowedHost
    client.get(f"/t/raise/?c={quote(marked)}")  # exception text
    for username in (marked, "a" * 135 + marked):  # DEBUG's SQL, login_failed (cut at 150)
        client.post(
            "/api/v1/auth/token/",
            {"username": username, "password": "x"},
            content_type="application/json",
        )
    # an IPv6 Host (DisallowedHost's message): the groups of a card, read across the colons
    client.get("/t/plain/", HTTP_HOST=f"[fe80::{marked}]")


def everything_written(directory: Path, capfd) -> str:
    from observability import flush_logs

    assert flush_logs(DEADLINE)
    text = "".join(p.read_text(errors="replace") for p in sorted(directory.glob("*.log*")))
    return text + capfd.readouterr().err


def run_example(capfd, log_format: str, written: str) -> str:
    directory = Path(tempfile.mkdtemp(prefix="corpus-"))
    configure_logs(directory, console=True, debug=True, log_format=log_format)
    send_everywhere(written)
    return everything_written(directory, capfd)


@pytest.fixture
def debug_sql(settings):
    settings.DEBUG = True  # Django logs SQL with its parameters only in DEBUG


@pytest.mark.parametrize("log_format", ["text", "json"])
@given(card=card_numbers())
@hsettings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_more_than_four_digits_survive_anywhere(capfd, debug_sql, log_format, card):
    digits, written = card
    output = run_example(capfd, log_format, written)
    runs = digit_runs_after_marker(output)
    assert len(runs) >= 10, "every channel wrote its line"
    for run in runs:
        assert longest_common_run(run, digits) <= 4, (written, run)


@pytest.mark.parametrize("log_format", ["text", "json"])
@given(card=card_numbers())
@hsettings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_positive_control_with_masking_off(capfd, debug_sql, settings, log_format, card):
    """The same check sees the whole number when the policy is switched off."""
    settings.OBSERVABILITY = {**NOT_SLOW, "REDACT": False}
    digits, written = card
    output = run_example(capfd, log_format, written)
    assert any(
        longest_common_run(run, digits) == len(digits) for run in digit_runs_after_marker(output)
    )


def test_decoder_reads_escapes_and_separators():
    text = "x QQ4\\uff11\u00a0\\u200b1-1/\\U0001d7cf ZZ QQ****1111ZZ QQ4 a 1"
    assert digit_runs_after_marker(text) == ["41111", "1111", "4"]
    assert digit_runs_after_marker("QQ4\\n1\\t1\\\\u0031 ZZ") == ["4111"]
    assert json.loads(json.dumps(text)) == text


PERCENT_GAPS = ["%2F", "%252F", "%25252F", "%20", "%2D", "%C2%A0", "%E3%85%A4", "%E2%80%8B", "-"]


@st.composite
def percent_cards(draw) -> tuple[str, str]:
    """(the digits, the number with its gaps percent-encoded once, twice or three times)."""
    length = draw(st.integers(13, 19))
    body = draw(st.lists(st.integers(0, 9), min_size=length - 2, max_size=length - 2))
    digits = "".join(map(str, luhn_complete([draw(st.integers(1, 9)), *body])))
    gaps = draw(st.lists(st.sampled_from(PERCENT_GAPS), min_size=length - 1, max_size=length - 1))
    return digits, "".join(d + g for d, g in zip(digits, [*gaps, ""], strict=True))


def _readings(text: str) -> list[str]:
    from urllib.parse import unquote

    readings = [text]
    for _ in range(4):
        readings.append(unquote(readings[-1], errors="replace"))
    return readings


@pytest.mark.parametrize("log_format", ["text", "json"])
@given(card=percent_cards())
@hsettings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_percent_encoded_cards_never_survive_anywhere(capfd, debug_sql, log_format, card):
    """What urlencode makes of a card (`4539%2F1445...`), and a path encoded twice, as
    written in the URL: Django decodes once; the layer reads every decoding."""
    digits, written = card
    directory = Path(tempfile.mkdtemp(prefix="corpus-pct-"))
    configure_logs(directory, console=True, debug=True, log_format=log_format)
    marked = OPEN + written + CLOSE
    client = Client(raise_request_exception=False)
    client.get(f"/t/channels/?c={marked}", HTTP_USER_AGENT=marked)  # the query as written
    client.get(f"/t/nope/{marked}/")  # Not Found: the path decoded once
    client.get(f"/t/plain/?{marked}")
    client.get(f"/t/raise/?c={marked}")
    output = everything_written(directory, capfd)
    runs = [run for reading in _readings(output) for run in digit_runs_after_marker(reading)]
    assert len(runs) >= 5
    for run in runs:
        assert longest_common_run(run, digits) <= 4, (written, run)


@given(card=card_numbers())
@hsettings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_a_trace_id_made_of_a_card_never_reaches_a_log_or_a_header(capfd, card):
    """A card and more digits as a traceparent's trace ID: refused, never written."""
    digits, _ = card
    trace = (digits + "0123456789012345678")[:32]
    directory = Path(tempfile.mkdtemp(prefix="corpus-trace-"))
    configure_logs(directory, console=True)
    response = Client().get("/t/plain/", HTTP_TRACEPARENT=f"00-{trace}-00f067aa0ba902b7-01")
    output = everything_written(directory, capfd)
    assert "traceparent_rejected" in output
    assert digits not in output and digits not in response["traceresponse"]
