"""IDs never look like a card number: ours are never made so, a client's are not adopted.

32 decimal digits are valid lowercase hex, so a `traceparent` can carry a card number
into every record of a request (`trace_id=`), the `traceresponse` header and `logtrace`'s
output; and about 0.8% of random hex IDs hold 13-19 digits that pass Luhn by chance,
which a card scanner (a PCI DLP tool) reading clean logs would flag.
"""

from __future__ import annotations

import re
import threading

import pytest
from django.core.management import call_command
from django.test import Client
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from observability.masking.percent import holds_card
from observability.tracing import ids
from tests.conftest import NOT_SLOW, parse_tokens
from tests.observability.test_redaction import surviving, without_times

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

CARD = "4111111111111111"
CARD_TRACE = CARD + "0123456789012345"  # a card and 16 more digits: 32 valid hex digits
PARENT = "00f067aa0ba902b7"
CLEAN_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _started(logs, response) -> dict[str, str]:
    request_id = response["X-Request-ID"]
    line = next(line for line in logs.for_request(request_id) if "started" in line)
    return parse_tokens(line)


# ---------------------------------------------------------------------------- incoming


@pytest.mark.parametrize(
    ("trace_id", "parent_id"),
    [(CARD_TRACE, PARENT), (CLEAN_TRACE, CARD), ("abc" + CARD + "0" * 13, PARENT)],
    ids=["card-trace", "card-parent", "card-inside-trace"],
)
def test_traceparent_holding_a_card_is_not_adopted(logs, capsys, trace_id, parent_id):
    response = Client().get("/t/plain/", HTTP_TRACEPARENT=f"00-{trace_id}-{parent_id}-01")
    assert response.status_code == 200
    fields = _started(logs, response)
    assert fields["trace_id"] != trace_id and re.fullmatch(r"[0-9a-f]{32}", fields["trace_id"])
    assert trace_id not in response["traceresponse"]
    assert not holds_card(response["traceresponse"])
    security = logs.text("security")
    event = next(line for line in security.splitlines() if "traceparent_rejected" in line)
    assert parse_tokens(event)["reason"] == "card_number"
    assert parse_tokens(event)["request_id"] == response["X-Request-ID"]
    everything = without_times(logs.everything())  # a line's time is not an ID
    assert not surviving(CARD, everything), [
        line for line in everything.splitlines() if "411" in line
    ]
    call_command("logtrace", response["X-Request-ID"], "--dir", str(logs.path))
    assert not surviving(CARD, without_times(capsys.readouterr().out))


def test_traceparent_from_a_trusted_proxy_is_always_adopted(logs, settings):
    settings.OBSERVABILITY = {
        **NOT_SLOW,
        "TRUST_INCOMING_TRACEPARENT": "proxies",
        "TRUSTED_PROXIES": ["10.0.0.0/8"],
    }
    header = f"00-{CARD_TRACE}-{PARENT}-01"
    response = Client(REMOTE_ADDR="10.0.0.5").get("/t/plain/", HTTP_TRACEPARENT=header)
    assert _started(logs, response)["trace_id"] == CARD_TRACE
    assert "traceparent_rejected" not in logs.text("security")


def test_an_ordinary_traceparent_is_adopted_without_an_event(logs):
    response = Client().get("/t/plain/", HTTP_TRACEPARENT=f"00-{CLEAN_TRACE}-{PARENT}-01")
    assert _started(logs, response)["trace_id"] == CLEAN_TRACE
    assert "traceparent_rejected" not in logs.text("security")


# ---------------------------------------------------------------------------- server-made


def _draws(monkeypatch, blocks: list[bytes]) -> list[int]:
    """Make ids._take hand out `blocks` first, then random ones; count the draws.

    Only this thread's draws: a thread another test left running (a server's, a pool's)
    may make IDs meanwhile, and must get neither the blocks nor a place in the count.
    """
    taken = []
    original = ids._take
    me = threading.current_thread()
    # After them, a block without a digit: the draw that follows a refused one is never
    # refused by chance (about 2% of random draws are), so the count is exact.
    blocks = [*blocks, bytes.fromhex("ab" * 40)]

    def take() -> bytes:
        if threading.current_thread() is not me:
            return original()
        taken.append(1)
        return blocks.pop(0) if blocks else original()

    monkeypatch.setattr(ids, "_take", take)
    return taken


def _block(request_hex: str, trace_hex: str, span_hex: str) -> bytes:
    return bytes.fromhex(request_hex + trace_hex + span_hex)


@pytest.mark.parametrize(
    "block",
    [
        _block("ab" * 16, CARD_TRACE, "ab" * 8),  # the trace ID
        _block("ab" * 16, "ab" * 16, CARD),  # the span ID
        _block("41111111111101110111" + "aa" * 6, "ab" * 16, "ab" * 8),  # the UUID groups
        _block("ab" * 16, "ab" * 8 + "cd" * 2 + "41111111", "11111111abababab"),  # trace-span
    ],
    ids=["trace", "span", "request-id-groups", "across-the-traceparent"],
)
def test_new_ids_never_hold_a_card(monkeypatch, block):
    taken = _draws(monkeypatch, [block])
    request_id, trace_id, span_id = ids.new_ids()
    assert len(taken) == 2  # the first draw was thrown away
    joined = f"{request_id}x00-{trace_id}-{span_id}-01x{span_id}-00"
    assert not holds_card(joined)
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", request_id
    )


def test_new_span_id_holds_no_card_alone_or_with_its_trace(monkeypatch):
    taken = _draws(monkeypatch, [bytes(32) + bytes.fromhex(CARD)])
    assert not holds_card(ids.new_span_id())
    assert len(taken) == 2
    trace = "ab" * 8 + "cd" * 2 + "41111111"  # ends in eight digits
    taken = _draws(monkeypatch, [bytes(32) + bytes.fromhex("11111111" + "abababab")])
    span = ids.new_span_id(trace)
    assert len(taken) == 2 and not holds_card(f"00-{trace}-{span}-01")


def test_ten_thousand_server_made_ids_hold_no_card():
    """About 0.8% of random trace IDs held one: 80 of 10,000, before."""
    for _ in range(10_000):
        request_id, trace_id, span_id = ids.new_ids()
        assert not holds_card(f"{request_id}x00-{trace_id}-{span_id}-01x{span_id}-00")
        assert not holds_card(request_id) and not holds_card(trace_id)


@given(block=st.binary(min_size=40, max_size=40))
@hsettings(max_examples=3000, deadline=None)
def test_the_ids_own_card_test_reads_as_the_maskers(block):
    """ids._card_in is a shortcut for hex, dashes and x: it answers as holds_card does."""
    h = block.hex()
    request_id = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"
    for text in (
        f"{request_id}x00-{h[32:64]}-{h[64:80]}-01x{h[64:80]}-00",
        f"00-{h[32:64]}-",
        f"{h[64:80]}-01x{h[64:80]}-00",
        "4111-1111-1111-1111x" + h[:8],
        "4111111111111111" + h[:4],
    ):
        assert ids._card_in(text) == holds_card(text), text


def test_the_span_of_a_request_in_an_adopted_trace_makes_no_card_with_it(logs, monkeypatch):
    """The request's span ID is drawn for the trace it ends up in: an adopted trace ID that
    ends in twelve digits and a span starting with four make a card in `traceresponse`."""
    trace = "ab" * 10 + "411111111111"  # no card alone (twelve digits)
    _draws(monkeypatch, [_block("ab" * 16, "ab" * 16, "1111abababababab")])
    response = Client().get("/t/plain/", HTTP_TRACEPARENT=f"00-{trace}-{PARENT}-01")
    assert response.status_code == 200
    assert response["traceresponse"].startswith(f"00-{trace}-")
    assert not holds_card(response["traceresponse"]), response["traceresponse"]
    fields = _started(logs, response)
    assert fields["trace_id"] == trace
    assert not holds_card(f"00-{trace}-{fields['span_id']}-01")
