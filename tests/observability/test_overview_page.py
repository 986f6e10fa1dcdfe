"""The overview page (/ops/overview/) with Django's test client: who may look, what it shows,
that each look is audited once, that its numbers are cached, and that log text stays text."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.test import Client

from observability.viewer.headers import CONTENT_SECURITY_POLICY
from tests.conftest import parse_tokens, slow_threshold, token_for
from tests.observability.loglines import write
from tests.observability.test_overview import REQUESTS, TRACEBACK, event, seed, terminal
from tests.observability.test_viewer import HOSTILE, Page, page

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

OVERVIEW = "/ops/overview/"
OVERVIEW_JS = "/static/observability/viewer/overview.js"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def seeded(logs, settings):
    """The unit tests' seeded window, ending a minute ago, in the directory the viewer reads
    (the test's own requests write their lines there too, after the seeded ones)."""
    settings.LOG_BASE_DIR = str(logs.path)
    seed(logs.path, "text", t0=datetime.now(UTC) - timedelta(minutes=10))
    return logs


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client(REMOTE_ADDR="192.0.2.60")
    client.force_login(staff)
    return client


def shown(response) -> dict[str, str]:
    parsed = page(response)
    html = response.content.decode()
    totals = {}
    for name in ("requests", "errors", "slow", "security"):
        start = html.index(f'id="total-{name}"')
        totals[name] = Page(html[html.index(">", start) + 1 : html.index("</dd>", start)]).text
    assert parsed.find("figure", "overview-chart")
    return totals


def overview_events(logs) -> list[dict[str, str]]:
    return [
        tokens
        for tokens in (parse_tokens(line) for line in logs.lines("security"))
        if tokens.get("event_type") == "request_overview_viewed"
    ]


def inert(response) -> Page:
    """No inline script, handler or style; control and bidi characters never raw."""
    html = response.content.decode()
    parsed = Page(html)
    for tag, attrs in parsed.tags:
        assert tag not in ("img", "iframe", "object", "embed"), (tag, attrs)
        assert not [name for name in attrs if name.startswith("on") or name == "style"], attrs
        if tag == "script":
            assert attrs.get("src") == OVERVIEW_JS, attrs
    for char in ("\u202e", "\x1b", "\x00", "\u2028"):
        assert char not in html
    return parsed


# --- Who may look ---------------------------------------------------------------------


def test_anonymous_customers_and_a_jwt_alone_are_sent_to_the_login(seeded, user, staff):
    customer = Client()
    customer.force_login(user)
    jwt = {"HTTP_AUTHORIZATION": f"Bearer {token_for(staff)}"}
    for response in (Client().get(OVERVIEW), customer.get(OVERVIEW), Client().get(OVERVIEW, **jwt)):
        assert response.status_code == 302
        assert response["Location"] == f"/admin/login/?next={OVERVIEW}"
        assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert overview_events(seeded) == []


# --- What it shows --------------------------------------------------------------------


def test_staff_see_the_counts_the_chart_data_and_the_top_error_group(
    seeded, staff_client, settings
):
    with slow_threshold(settings, 1.0):  # the seeded lines' one slow request (2.5 s) counts
        response = staff_client.get(OVERVIEW)
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "no-store" in response["Cache-Control"]
    assert shown(response) == {"requests": "60", "errors": "5", "slow": "1", "security": "45"}
    parsed = inert(response)
    (figure,) = parsed.find("figure", "overview-chart")
    requests = [float(n) for n in (figure["data-requests"] or "").split(",")]
    assert len(requests) == 60 and sum(requests) == pytest.approx(60)
    assert sum(float(n) for n in (figure["data-errors"] or "").split(",")) == 5
    assert "re-weighted by sample_rate" in parsed.text
    # the top error group: its type, view, our frame, count, users, and its newest story
    html = response.content.decode()
    groups = html[html.index('<table class="error-groups">') :]
    first_row = groups[groups.index("<tbody>") : groups.index("</tr>", groups.index("<tbody>"))]
    row = Page(first_row)
    assert "ValueError" in row.text and "billing.views.PaymentListView" in row.text
    assert str(seeded.path.parent) not in row.text  # no absolute path of ours is needed
    (link,) = row.find("a", "example-link")
    assert link["href"].startswith("/ops/requests/v3/?at=") and link["href"].endswith("&span=sv3")
    assert [a["href"] for a in parsed.find("a", "nav-overview")] == [OVERVIEW]


def test_the_viewers_root_is_the_overview(seeded, staff_client):
    response = staff_client.get("/ops/")
    assert response.status_code == 302 and response["Location"] == OVERVIEW
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert overview_events(seeded) == []  # a redirect shows nothing: the overview audits


def test_the_requests_page_links_to_the_overview(seeded, staff_client):
    listing = page(staff_client.get("/ops/requests/"))
    assert [a["href"] for a in listing.find("a", "nav-overview")] == [OVERVIEW]


def test_a_day_is_1440_minutes_and_a_bad_window_is_a_400_naming_it(seeded, staff_client):
    day = staff_client.get(OVERVIEW + "?window=1d")
    (figure,) = page(day).find("figure", "overview-chart")
    assert len((figure["data-requests"] or "").split(",")) == 1440
    assert shown(day)["errors"] == "5"
    bad = staff_client.get(OVERVIEW + "?window=<b>7d")
    assert bad.status_code == 400
    assert "window: must be one of 1h, 1d" in page(bad).text
    assert "<b>7d" not in bad.content.decode()


def test_the_overview_is_cached_briefly_by_window(seeded, staff_client):
    first = shown(staff_client.get(OVERVIEW))
    write(seeded.path / REQUESTS, [terminal("text", "new", datetime.now(UTC), status=500)])
    assert shown(staff_client.get(OVERVIEW)) == first  # from the cache: the file is not read
    assert shown(staff_client.get(OVERVIEW + "?window=1d"))["errors"] == "6"  # its own key
    cache.clear()
    assert shown(staff_client.get(OVERVIEW))["errors"] == "6"


# --- Every look is audited ------------------------------------------------------------


def test_every_view_writes_exactly_one_audit_event_with_the_staff_context(seeded, staff):
    client = Client(REMOTE_ADDR="192.0.2.61")
    client.force_login(staff)
    views = [
        ("", {"query_valid": "True", "cached": "False"}),
        ("", {"query_valid": "True", "cached": "True"}),
        ("?window=1d", {"query_window": "1d", "cached": "False"}),
        ("?window=2w", {"query_window": "2w", "query_valid": "False"}),
    ]
    for number, (query, expected) in enumerate(views, 1):
        client.get(OVERVIEW + query)
        events = overview_events(seeded)
        assert len(events) == number, query
        event = events[-1]
        assert event["ip"] == "192.0.2.61" and event["user_id"] == str(staff.pk)
        assert event["username"] == "admin" and event["path"] == OVERVIEW
        for key, value in expected.items():
            assert event[key] == value, (key, event)
    assert "cached" not in overview_events(seeded)[-1]


def test_the_overview_refuses_to_show_what_it_cannot_audit(seeded, staff_client):
    security = logging.getLogger("billing.security")
    level = security.level
    security.setLevel(logging.WARNING)
    try:
        response = staff_client.get(OVERVIEW)
        assert response.status_code == 503
        assert "audit" in page(response).text and "ValueError" not in page(response).text
    finally:
        security.setLevel(level)


# --- Log text stays text --------------------------------------------------------------


def test_hostile_routes_views_exceptions_and_event_types_are_shown_as_text(
    tmp_path, settings, staff_client
):
    settings.LOG_BASE_DIR = str(tmp_path)
    now = datetime.now(UTC) - timedelta(seconds=30)
    hostile_tb = TRACEBACK.replace("card <b>declined</b>", HOSTILE).replace(
        "payment_create", "<svg onload=alert(3)>"
    )
    write(
        tmp_path / REQUESTS,
        [
            terminal(
                "json", "e1", now, status=500, route=HOSTILE, view=HOSTILE, traceback=hostile_tb
            ),
            terminal("json", "e2", now, route=HOSTILE, duration=0.5),
        ],
    )
    write(tmp_path / "billing_api_security.log", [event("json", now, HOSTILE)])
    response = staff_client.get(OVERVIEW)
    assert response.status_code == 200
    parsed = inert(response)
    assert "<script>alert(1)</script>" in parsed.text  # shown, as text
    assert "<svg onload=alert(3)>" in parsed.text
    assert "\\u202eevil\\x1b[31m\\x00" in parsed.text  # controls made visible, not applied
    html = response.content.decode()
    assert "<script>alert" not in html and "<svg" not in html
    for _tag, attrs in parsed.tags:  # in an attribute only as a link's escaped query
        for name, value in attrs.items():
            assert "<script" not in (value or "") or name == "href", (name, value)
