"""Client text echoed in an error body is masked (card numbers), then escaped (THREATS 1, 4, 9).

A validation message repeats what the client sent (`"X" is not a valid choice.`, `Object
with code=X does not exist.`, `Unknown report type 'X'`): the body is the client's own
text, but a proxy, a browser's devtools, a support ticket or an APM that records
responses would keep a card number typed into the wrong field, and a raw ESC or RLO in a
JSON string reaches a terminal through `jq -r`.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest

from tests.observability.test_redaction import surviving

pytestmark = pytest.mark.django_db

CARD = "4539144569597196"
HOSTILE = "4539 1445 6959 7196 is\x1b[2J\u202eevil\x07"
RAW = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def assert_clean(response, field: str) -> dict:
    assert 400 <= response.status_code < 500, response.content
    body = response.content.decode()
    error = json.loads(body)["error"]
    shown = json.dumps(error, ensure_ascii=False)
    assert not surviving(CARD, shown), shown
    # No control or bidi character in any string the body decodes to (what `jq -r` prints).
    assert not [text for text in strings(error) if RAW.search(text)], body
    assert field in shown
    return error


def strings(value) -> list[str]:
    if isinstance(value, dict):
        return [*value, *(text for item in value.values() for text in strings(item))]
    if isinstance(value, list):
        return [text for item in value for text in strings(item)]
    return [value] if isinstance(value, str) else []


def test_a_choice_field_echo_is_masked_and_escaped(api):
    body = {"amount": "10.00", "currency": "USD", "payment_method": HOSTILE}
    error = assert_clean(api.post("/api/v1/payments/", body, format="json"), "payment_method")
    assert "\\x1b" in error["fields"]["payment_method"][0]  # shown as text


def test_a_related_field_echo_is_masked_and_escaped(api):
    response = api.post("/api/v1/subscriptions/", {"plan": HOSTILE}, format="json")
    assert_clean(response, "plan")


def test_a_report_type_echo_is_masked_and_escaped(api):
    response = api.get("/api/v1/reports/" + quote(HOSTILE, safe="") + "/")
    assert_clean(response, "report_type")


def test_a_currency_echo_is_masked_and_escaped(api):
    body = {"amount": "10.00", "currency": HOSTILE, "payment_method": "card"}
    assert_clean(api.post("/api/v1/payments/", body, format="json"), "currency")


def test_an_unknown_key_in_a_nested_field_is_masked_and_escaped(api):
    body = {"amount": "10.00", "currency": "USD", "payment_method": "card", HOSTILE: 1}
    response = api.post("/api/v1/payments/", body, format="json")
    assert response.status_code in (201, 400)  # unknown keys are ignored, never echoed raw
    assert not surviving(CARD, response.content.decode())


def test_an_unsupported_content_type_echo_is_masked_and_escaped(api):
    response = api.generic("POST", "/api/v1/payments/", "{}", content_type=f"text/x-{CARD}\u202e")
    assert response.status_code == 415
    assert_clean(response, "")


def test_the_viewers_login_redirect_never_repeats_a_card(client):
    """Anyone but staff is sent to the admin's login with `next`: masked, in `Location`."""
    response = client.get(f"/ops/requests/?user={CARD}&ip=1")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")
    assert not surviving(CARD, unquote_all(response["Location"]))
    assert "ip%3D1" in response["Location"]  # the rest of the query is kept


def test_the_admin_login_page_never_repeats_a_card_in_next(client):
    response = client.get(f"/admin/login/?next=/ops/requests/{CARD}/")
    assert response.status_code == 302 and response["Location"] == "/admin/login/"
    posted = client.post(
        f"/admin/login/?next={CARD}",
        {"username": "x", "password": "y", "next": f"/ops/{CARD}/"},
    )
    assert posted.status_code == 200
    assert not surviving(CARD, unquote_all(posted.content.decode()))
    kept = client.get("/admin/login/?next=/ops/requests/")
    assert 'value="/ops/requests/"' in kept.content.decode()


ISO_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(?:Z|[+-][0-9]{2}:[0-9]{2})?")


def unquote_all(text: str) -> str:
    from urllib.parse import unquote

    return text + "\n" + unquote(text) + "\n" + unquote(unquote(text))


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/payments/",
            {"amount": "5.00", "currency": "USD", "payment_method": "pm_card_visa"},
            "description",
        ),
        ("/api/v1/payments/{paid}/refund/", {"amount": "1.00"}, "reason"),
    ],
)
@pytest.mark.parametrize(
    "text", ["card 4539 1445 6959 7196", "4539-1445-6959-7196", "4539%2F1445%2F6959%2F7196"]
)
def test_free_text_never_stores_a_card_number(api, path, body, field, text):
    """A card typed into a description or a refund reason would be stored and sent back in
    every listing: a 400 naming the field, without the value."""
    paid = api.post(
        "/api/v1/payments/",
        {"amount": "5.00", "currency": "USD", "payment_method": "pm_card_visa"},
        format="json",
    ).json()["id"]
    response = api.post(path.format(paid=paid), {**body, field: text}, format="json")
    error = assert_clean(response, field)
    assert error["fields"][field] == [
        "must not hold a card number; send card details only as a payment method."
    ]
    listing = api.get("/api/v1/payments/").content.decode()
    # Without the rows' own timestamps: `...T15:03:29.745391Z` holds the card's `45391`.
    assert not surviving(CARD, ISO_TIME.sub("<time>", listing))
