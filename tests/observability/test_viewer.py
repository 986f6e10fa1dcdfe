"""The trace viewer's pages with Django's test client: who may look, what they find, how it shows.

Everything a log line holds is attacker-controlled; these tests put hostile text in every field
and check the page shows it as text.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from freezegun import freeze_time

from observability.viewer.headers import CONTENT_SECURITY_POLICY
from tests import urls as test_urls
from tests.conftest import NOT_SLOW, parse_tokens, slow_threshold, token_for
from tests.observability.loglines import T0, json_line, request_lines, text_line, write
from tests.polling import DEADLINE, wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

LIST = "/ops/requests/"
TIMELINE_JS = "/static/observability/viewer/timeline.js"
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>\u202eevil\x1b[31m\x00'


class Page(HTMLParser):
    """The tags, attributes and text of a page, as a browser would parse them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.chunks: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def find(self, tag: str, css_class: str | None = None) -> list[dict[str, str | None]]:
        return [
            attrs
            for name, attrs in self.tags
            if name == tag
            and (css_class is None or css_class in (attrs.get("class") or "").split())
        ]


def page(response) -> Page:
    return Page(response.content.decode())


@pytest.fixture
def log_dir(logs, settings):
    """The viewer reads the files this test's requests write."""
    settings.LOG_BASE_DIR = str(logs.path)
    return logs


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", password="root-pass-123")


@pytest.fixture
def filled(log_dir, user, settings):
    """Real requests: john_doe's payment, an anonymous call, a failure, a slow one, a 404."""
    client = Client(REMOTE_ADDR="10.0.0.7")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_for(user)}"}
    pay = client.post(
        "/api/v1/payments/",
        {"amount": "5.00", "currency": "USD", "payment_method": "pm_card_visa"},
        content_type="application/json",
        **auth,
    )
    ids = {
        "pay": pay["X-Request-ID"],
        "anon": Client(REMOTE_ADDR="10.0.0.8").get("/t/plain/")["X-Request-ID"],
        "boom": Client(raise_request_exception=False, REMOTE_ADDR="10.0.0.7").get("/t/boom/")[
            "X-Request-ID"
        ],
        "missing": client.get("/api/v1/payments/999/", **auth)["X-Request-ID"],
    }
    with freeze_time("2026-11-26 12:00:00") as freezer, slow_threshold(settings, 1.0):
        test_urls.clock.update(freezer=freezer, advance=2.0)
        ids["slow"] = client.get("/t/plain/")["X-Request-ID"]
    test_urls.clock.update(freezer=None, advance=0.0)
    log_dir.lines("requests")  # drained
    ids["payment_id"] = pay.json()["id"]
    return log_dir, ids


def listed(client: Client, query: str = "") -> list[str]:
    response = client.get(LIST + query)
    assert response.status_code == 200, response.content[:500]
    return [a["href"].split("/")[3] for a in page(response).find("a", "open-link")]


# --- Who may look -------------------------------------------------------------------


@pytest.mark.parametrize("url", [LIST, LIST + "some-id/"])
def test_anonymous_is_sent_to_the_admin_login(log_dir, url):
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={url}"


def test_a_logged_in_customer_is_sent_to_the_login_too(log_dir, user):
    client = Client()
    client.force_login(user)
    response = client.get(LIST)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_a_staff_jwt_alone_does_not_open_the_viewer(log_dir, staff):
    response = Client().get(LIST, HTTP_AUTHORIZATION=f"Bearer {token_for(staff)}")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_staff_log_in_through_the_admin_login_and_see_the_list(filled, staff):
    client = Client()
    login = client.post(
        "/admin/login/?next=/ops/requests/",
        {"username": "admin", "password": "admin-pass-789", "next": "/ops/requests/"},
    )
    assert login.status_code == 302 and login["Location"] == "/ops/requests/"
    response = client.get(LIST)
    assert response.status_code == 200
    assert "<h1>Requests</h1>" in response.content.decode()


def test_the_viewer_reads_log_base_dir_only(filled, staff_client, tmp_path):
    _, ids = filled
    assert ids["pay"] in listed(staff_client, f"?dir={tmp_path}&path=/api/v1/payments/")
    # an ID is an allowlisted token: anything path-like never reaches the engine
    for bad in ("..%2F..%2Fetc%2Fpasswd", "a%20b", "x" * 129):
        assert staff_client.get(f"{LIST}{bad}/").status_code == 404


# --- Finding requests ---------------------------------------------------------------


def test_each_filter_finds_its_request(filled, staff_client):
    _, ids = filled
    assert listed(staff_client, "?user=john_doe&path=/api/") == [ids["missing"], ids["pay"]]
    assert listed(staff_client, "?ip=10.0.0.8") == [ids["anon"]]
    assert listed(staff_client, "?path=/api/v1/payments/&status=2xx") == [ids["pay"]]
    assert listed(staff_client, "?status=404&user=john_doe") == [ids["missing"]]
    assert listed(staff_client, "?status=5xx") == [ids["boom"]]
    assert listed(staff_client, "?errors=1") == [ids["boom"]]
    assert listed(staff_client, "?slow=1") == [ids["slow"]]
    assert ids["slow"] not in listed(staff_client, "?slow=0&ip=10.0.0.7&since=1h")
    assert listed(staff_client, "?until=2026-11-26T12:00:01&ip=10.0.0.7") == [ids["slow"]]
    assert listed(staff_client, "?since=2099-01-01") == []


def test_a_row_says_time_method_path_status_duration_user(filled, staff_client):
    _, ids = filled
    response = staff_client.get(LIST + "?user=john_doe&path=/api/v1/payments/&status=201")
    html = response.content.decode()
    row = html[html.index("<tbody>") : html.index("</tbody>")]
    assert "POST" in row and "/api/v1/payments/" in row and ">201<" in row
    assert " ms</td>" in row
    assert 'href="/ops/requests/?user=john_doe"' in row
    assert f'href="/ops/requests/{ids["pay"]}/?at=' in row


def test_bad_filters_are_a_400_naming_the_parameter(log_dir, staff_client):
    response = staff_client.get(LIST + "?since=yesterday-ish&status=6xx")
    assert response.status_code == 400
    text = page(response).text
    assert "since: expected an ISO time (UTC) or an age like 15m" in text
    assert "status:" in text


def test_pages_of_fifty_newest_first(tmp_path, settings, staff_client):
    settings.LOG_BASE_DIR = str(tmp_path)
    lines = []
    for n in range(120):
        lines += request_lines(f"req-{n:03d}", T0 + timedelta(seconds=n))
    write(tmp_path / "billing_api_requests.log", lines)
    first = staff_client.get(LIST)
    rows = [a["href"].split("/")[3] for a in page(first).find("a", "open-link")]
    assert rows == [f"req-{n:03d}" for n in range(119, 69, -1)]
    assert page(first).find("a", None)[-1]["href"] == "?page=2"
    third = staff_client.get(LIST + "?page=3")
    assert [a["href"].split("/")[3] for a in page(third).find("a", "open-link")] == [
        f"req-{n:03d}" for n in range(19, -1, -1)
    ]
    links = [a.get("rel") for a in page(third).find("a")]
    assert "prev" in links and "next" not in links


def test_json_logs_and_gzipped_backups_are_read(tmp_path, settings, staff_client):
    settings.LOG_BASE_DIR = str(tmp_path)
    write(
        tmp_path / "billing_api_requests.log.1.gz",
        request_lines("old-json", T0, fmt="json", path="/api/v1/plans/"),
    )
    write(tmp_path / "billing_api_requests.log", request_lines("new-text", T0 + timedelta(hours=1)))
    write(
        tmp_path / "billing_api.log.1.gz",
        [json_line(T0 + timedelta(milliseconds=3), "from a gzipped backup", request_id="old-json")],
    )
    assert listed(staff_client) == ["new-text", "old-json"]
    response = staff_client.get(LIST + "old-json/")
    assert response.status_code == 200
    assert "from a gzipped backup" in page(response).text
    assert [li["data-lane"] for li in page(response).find("li", "record")] == [
        "requests",
        "general",
        "requests",
    ]


# --- One request's story ------------------------------------------------------------------


def test_story_header_timeline_and_records(filled, staff_client, settings):
    _, ids = filled
    with slow_threshold(settings, 1.0):  # the threshold the timeline draws
        response = staff_client.get(f"{LIST}{ids['pay']}/")
    assert response.status_code == 200
    parsed = page(response)
    text = " ".join(parsed.text.split())
    assert "POST /api/v1/payments/" in text
    assert "john_doe (ID " in text and "10.0.0.7" in text
    records = parsed.find("li", "record")
    assert len(records) == 6  # started, the gateway's span, 2 billing events, a metric, completed
    offsets = [float(li["data-offset-ms"]) for li in records]
    assert offsets == sorted(offsets) and offsets[0] == 0
    assert [li["data-lane"] for li in records][0::5] == ["requests", "requests"]
    figure = parsed.find("figure")[0]
    assert figure["id"] == "timeline" and figure["data-lanes"] == "requests general"
    assert float(figure["data-threshold-ms"]) == 1000.0
    assert [s["src"] for s in parsed.find("script")] == [TIMELINE_JS]
    # links: the same user's other requests, the payment's admin page
    hrefs = [a["href"] for a in parsed.find("a")]
    assert "/ops/requests/?user=john_doe" in hrefs
    assert f"/admin/billing/payment/{ids['payment_id']}/change/" in hrefs


def test_traceback_is_folded_under_its_record(filled, staff_client):
    _, ids = filled
    response = staff_client.get(f"{LIST}{ids['boom']}/")
    html = response.content.decode()
    assert '<details class="traceback">' in html
    folded = html[html.index('<details class="traceback">') :]
    assert "<summary>Traceback: ValueError: kaboom</summary>" in folded
    assert "Traceback (most recent call last):\n" in folded  # real line breaks in <pre>
    assert "failed" in page(response).text
    # Written to two files, shown once: the failed line and Django's error name both files.
    assert html.count('<span class="file">requests+errors</span>') == 1
    assert html.count('<span class="file">general+errors</span>') == 1
    assert '<span class="file">errors</span>' not in html


def test_shared_request_id_says_so_and_keeps_records_apart(log_dir, staff_client):
    client = Client()
    for _ in range(2):
        client.get("/t/plain/", HTTP_X_REQUEST_ID="shared-id-1")
        # lines have milliseconds: two requests in one are not told apart
        done = time.time_ns() // 1_000_000
        wait_for(lambda done=done: time.time_ns() // 1_000_000 > done, "the next millisecond")
    log_dir.lines("requests")
    response = staff_client.get(f"{LIST}shared-id-1/")
    parsed = page(response)
    assert "shared by 2 requests" in parsed.text
    # the newest request's started line, its request_id_reused event, view line, completed
    assert len(parsed.find("li", "record")) == 4
    assert "request_id_reused" in parsed.text
    other = [a["href"] for a in parsed.find("a") if (a["href"] or "").startswith("?at=")]
    assert len(other) == 1
    assert staff_client.get(f"{LIST}shared-id-1/{other[0]}").status_code == 200


def test_unknown_request_is_a_404_page_with_the_same_headers(log_dir, staff_client):
    response = staff_client.get(f"{LIST}no-such-request/")
    assert response.status_code == 404
    assert "No records for request" in page(response).text
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_viewing_a_trace_is_a_security_event(filled, staff_client):
    logs, ids = filled
    staff_client.get(f"{LIST}{ids['pay']}/")
    staff_client.get(LIST + "?user=john_doe")
    lines = [parse_tokens(line) for line in logs.lines("security")]
    viewed = [t for t in lines if t.get("event_type") == "request_trace_viewed"]
    assert len(viewed) == 1
    assert viewed[0]["viewed_request_id"] == ids["pay"]
    assert viewed[0]["username"] == "admin" and viewed[0]["path"] == f"{LIST}{ids['pay']}/"
    searched = [t for t in lines if t.get("event_type") == "request_log_searched"]
    assert searched and searched[0]["query_user"] == "john_doe"
    assert searched[0]["username"] == "admin"


# --- Security of the pages ----------------------------------------------------------------


def test_csp_and_other_headers_on_every_viewer_response(filled, staff_client):
    _, ids = filled
    responses = [
        staff_client.get(LIST),
        staff_client.get(f"{LIST}{ids['boom']}/"),
        staff_client.get(LIST + "?status=bad"),
        Client().get(LIST),  # the redirect to the login page too
    ]
    for response in responses:
        assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "no-store" in response["Cache-Control"]
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY


def assert_inert(response) -> Page:
    """Nothing in the page runs or styles itself: no inline script, handler or style."""
    html = response.content.decode()
    parsed = Page(html)
    for tag, attrs in parsed.tags:
        assert tag not in ("img", "iframe", "object", "embed"), (tag, attrs)
        assert not [name for name in attrs if name.startswith("on") or name == "style"], attrs
        if tag == "script":
            assert attrs.get("src") == TIMELINE_JS, attrs
    for char in ("\u202e", "\x1b", "\x00", "\u2028"):
        assert char not in html
    return parsed


def hostile_files(directory):
    """Lines a hostile client (or a foreign writer) could leave: text and JSON, every field."""
    h = HOSTILE
    text = text_line(
        T0,
        f"API Request started - {h}",
        "INFO",
        "<script>x</script>",
        request_id="evil-text",
        ip=h.replace(" ", "_"),
        method="<b>GET",
        path=f'"{h}"'.replace('"', "'"),
        user_agent=f'"{h}"'.replace('"', "'"),
    )
    done = json_line(
        T0 + timedelta(milliseconds=30),
        f"API Request failed - {h}",
        "ERROR",
        h,
        request_id="evil-text",
        ip=h,
        method=h,
        path=h,
        user_id=h,
        username=h,
        status=f"5{h}",
        duration=h,
        trace_id=h,
        span_id=h,
        route=h,
        user_agent=h,
        **{h: h},
        exc_info=f"Traceback (most recent call last):\n  {h}\nValueError: {h}",
    )
    write(directory / "billing_api_requests.log", [text, done])
    write(
        directory / "billing_api_errors.log",
        [
            text_line(
                T0 + timedelta(milliseconds=10), h.replace("|", ""), "ERROR", request_id="evil-text"
            )
            + f" | Traceback (most recent call last):\\n  {h}\\nValueError: {h}"
        ],
    )


def test_hostile_text_in_every_field_is_shown_as_text(tmp_path, settings, staff_client):
    settings.LOG_BASE_DIR = str(tmp_path)
    hostile_files(tmp_path)
    # a foreign line whose request ID no URL can hold: listed, without a link
    write(
        tmp_path / "billing_api_requests.log",
        request_lines(HOSTILE, T0 - timedelta(seconds=1), fmt="json"),
    )
    response = staff_client.get(LIST)
    assert response.status_code == 200
    listing = assert_inert(response)
    assert "<script>alert(1)</script>" in listing.text  # shown, as text
    assert len(listing.find("tr")) == 3 and len(listing.find("a", "open-link")) == 1
    detail = staff_client.get(f"{LIST}evil-text/")
    assert detail.status_code == 200
    parsed = assert_inert(detail)
    text = parsed.text
    assert text.count('"><img src=x onerror=alert(2)>') >= 10
    assert "\\u202eevil\\x1b[31m\\x00" in text  # controls made visible, not applied
    tracebacks = parsed.find("details", "traceback")
    assert len(tracebacks) == 2
    html = detail.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img" in html
    # the hostile values reach no attribute except as escaped text in a link's query
    for _tag, attrs in parsed.tags:
        for name, value in attrs.items():
            assert "<script" not in (value or "") or name == "href", (name, value)


def test_hostile_request_through_the_layer_is_shown_as_text(log_dir, staff_client):
    villain = get_user_model().objects.create_user(
        '<img src=x onerror=alert("u")>\u202e', password="villain-pass-1"
    )
    response = Client().get(
        '/api/v1/payments/?q="><script>alert(1)</script>',
        HTTP_USER_AGENT=HOSTILE,
        HTTP_AUTHORIZATION=f"Bearer {token_for(villain)}",
    )
    rid = response["X-Request-ID"]
    log_dir.lines("requests")
    listing = assert_inert(staff_client.get(LIST + f"?user={villain.pk}"))
    assert '<img src=x onerror=alert("u")>\\u202e' in listing.text
    parsed = assert_inert(staff_client.get(f"{LIST}{rid}/"))
    assert '<script>alert(1)</script>"><img src=x onerror=alert(2)>\\u202eevil' in parsed.text


# --- The admin -----------------------------------------------------------------------------


def test_user_admin_page_links_to_their_requests_and_failures(superuser, user):
    client = Client()
    client.force_login(superuser)
    response = client.get(f"/admin/auth/user/{user.pk}/change/")
    assert response.status_code == 200
    hrefs = [a["href"] for a in page(response).find("a")]
    assert "/ops/requests/?user=john_doe" in hrefs
    assert "/ops/requests/?user=john_doe&errors=1" in hrefs


def test_billing_records_have_read_only_admin_pages(filled, superuser):
    _, ids = filled
    client = Client()
    client.force_login(superuser)
    response = client.get(f"/admin/billing/payment/{ids['payment_id']}/change/")
    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()
    for model in ("plan", "subscription", "payment", "refund"):
        assert client.get(f"/admin/billing/{model}/").status_code == 200


# --- A reused ID whose first request was sampled out (finding 6) ---------------------------


def test_a_reused_id_of_a_sampled_out_request_is_shown_apart(log_dir, user, staff_client, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "SAMPLE_RATE": 0.0}  # every fast success is sampled out
    rid = f"pay-{uuid.uuid4().hex[:12]}"
    paid = Client().post(
        "/api/v1/payments/",
        {"amount": "5.00", "currency": "USD", "payment_method": "pm_card_visa"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token_for(user)}",
        HTTP_X_REQUEST_ID=rid,
    )
    assert paid.status_code == 201
    assert Client().get("/api/v1/payments/", HTTP_X_REQUEST_ID=rid).status_code == 401
    log_dir.lines("requests")
    response = staff_client.get(f"{LIST}{rid}/")
    assert response.status_code == 200
    parsed = page(response)
    assert "shared by 2 requests" in parsed.text
    assert "401" in parsed.text and "payment_created" not in parsed.text  # the newest: the 401
    other = [a["href"] for a in parsed.find("a") if (a["href"] or "").startswith("?at=")]
    assert len(other) == 1
    victim = page(staff_client.get(f"{LIST}{rid}/{other[0]}"))
    assert "payment_created" in victim.text and "john_doe" in victim.text
    assert "no lifecycle lines" in victim.text


def test_a_request_id_reused_event_is_said_in_the_header(tmp_path, settings, staff_client):
    settings.LOG_BASE_DIR = str(tmp_path)
    write(
        tmp_path / "billing_api_requests.log",
        request_lines("dup", T0, status=401, span_id="a" * 16),
    )
    write(
        tmp_path / "billing_api_security.log",
        [
            text_line(
                T0 + timedelta(milliseconds=1),
                "Security Event: request_id_reused - Severity: warning",
                "WARNING",
                "billing.security",
                request_id="dup",
                span_id="a" * 16,
                ip="203.0.113.9",
                event_type="request_id_reused",
            )
        ],
    )
    parsed = page(staff_client.get(f"{LIST}dup/"))
    assert parsed.find("span", "reused")
    assert "request_id_reused at 12:00:00.001 UTC from 203.0.113.9" in " ".join(parsed.text.split())


# --- Every staff page view is audited (finding 8) ------------------------------------------


def audit_events(logs, *types: str) -> list[dict[str, str]]:
    types = types or ("request_log_searched", "request_trace_viewed")
    return [
        tokens
        for tokens in (parse_tokens(line) for line in logs.lines("security"))
        if tokens.get("event_type") in types
    ]


def test_every_staff_page_view_writes_one_audit_event_with_the_staff_context(filled, staff):
    logs, ids = filled
    client = Client(REMOTE_ADDR="192.0.2.50")
    client.force_login(staff)
    views = [
        (LIST, {}),
        (LIST + "?page=2", {"query_page": "2"}),
        (LIST + "?ip=10.0.0.8&path=/t/", {"query_ip": "10.0.0.8", "query_path": "/t/"}),
        (LIST + "?user=john_doe&status=6xx", {"query_user": "john_doe", "query_status": "6xx"}),
        (f"{LIST}{ids['pay']}/", {"viewed_request_id": ids["pay"], "found": "True"}),
        (f"{LIST}no-such-id/", {"viewed_request_id": "no-such-id", "found": "False"}),
    ]
    for number, (url, expected) in enumerate(views, 1):
        client.get(url)
        events = audit_events(logs)
        assert len(events) == number, url  # exactly one per page view
        event = events[-1]
        assert event["ip"] == "192.0.2.50" and event["user_id"] == str(staff.pk), event
        assert event["username"] == "admin" and event["path"] == url.partition("?")[0]
        for key, value in expected.items():
            assert event[key] == value, (key, event)
    searched = audit_events(logs)[2]
    assert "query_ip" in searched and searched["ip"] == "192.0.2.50"  # never the filter's
    assert audit_events(logs)[3]["query_valid"] == "False"


def test_each_staff_member_opens_at_most_viewer_rate_pages(filled, staff, superuser, settings):
    """VIEWER_RATE 3/min: the fourth page (listing or story) is a 429 with Retry-After,
    read no file, and wrote its own audit event with the staff member's context. The count
    is in the shared cache: a process that knows nothing (a new worker) reads it there.
    Another staff member has pages of their own."""
    from observability.shared import slots
    from observability.viewer import views

    logs, ids = filled
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, "VIEWER_RATE": "3/min"}
    client = Client(REMOTE_ADDR="192.0.2.60")
    client.force_login(staff)
    with freeze_time("2026-12-02 10:00:05"):
        assert [client.get(url).status_code for url in (LIST, LIST + "?page=2", LIST)] == [200] * 3
        slots.forget_all()  # as another worker would: the counts are in the cache
        searched = []
        original = views.search
        views.search = lambda *a, **k: searched.append(1) or original(*a, **k)
        try:
            refused = client.get(LIST + "?user=john_doe")
            story = client.get(f"{LIST}{ids['pay']}/?span=abc")
        finally:
            views.search = original
        assert refused.status_code == story.status_code == 429 and not searched
        assert refused["Retry-After"] == "55"
        assert "Try again in 55 seconds" in refused.content.decode()
        other = Client(REMOTE_ADDR="192.0.2.61")
        other.force_login(superuser)
        assert other.get(LIST).status_code == 200
    events = audit_events(logs, "request_viewer_throttled")
    assert [e["query_user"] if "query_user" in e else e["viewed_request_id"] for e in events] == [
        "john_doe",
        ids["pay"],
    ]
    for event in events:
        assert event["ip"] == "192.0.2.60" and event["user_id"] == str(staff.pk)
        assert event["retry_after"] == "55"
    assert events[1]["query_span"] == "abc" and events[1]["path"] == f"{LIST}{ids['pay']}/"
    assert len(audit_events(logs)) == 4  # one a page: 3 shown, the other staff member's


def test_audit_events_past_the_flood_limit_are_counted_never_dropped(filled, staff, settings):
    from observability.testing import drain_logs

    logs, _ = filled
    settings.OBSERVABILITY = {**NOT_SLOW, "FLOOD_LIMIT": 3, "FLOOD_WINDOW": 600}
    client = Client(REMOTE_ADDR="192.0.2.51")
    client.force_login(staff)
    for n in range(8):
        client.get(LIST + f"?user=u{n}")
    # a client hammering logins from the same address does not use up the staff's events
    for _ in range(5):
        Client(REMOTE_ADDR="192.0.2.51").post(
            "/api/v1/auth/token/", {"username": "x", "password": "y"}
        )
    assert drain_logs(DEADLINE)
    lines = [parse_tokens(line) for line in logs.lines("security")]
    searched = [t for t in lines if t.get("event_type") == "request_log_searched"]
    one_by_one = [t for t in searched if "repeated" not in t]
    summaries = [t for t in searched if "repeated" in t]
    assert [t["query_user"] for t in one_by_one] == ["u0", "u1", "u2"]
    assert sum(int(t["repeated"]) for t in summaries) == 5  # exact: 3 + 5 = 8 views
    assert all(t["ip"] == "192.0.2.51" for t in searched)


def test_the_viewer_refuses_to_show_what_it_cannot_audit(filled, staff_client, settings):
    """A security logger that drops INFO (LOG_LEVEL=WARNING) would drop the audit events."""
    import logging

    _, ids = filled
    security = logging.getLogger("billing.security")
    level = security.level
    security.setLevel(logging.WARNING)
    try:
        for url in (LIST, f"{LIST}{ids['pay']}/"):
            response = staff_client.get(url)
            assert response.status_code == 503
            assert "audit" in page(response).text and ids["pay"] not in page(response).text
    finally:
        security.setLevel(level)


# --- Control and bidi characters in a filter (finding 19) ----------------------------------


@pytest.mark.parametrize("field", ["user", "ip", "path", "route", "since", "until", "trace"])
@pytest.mark.parametrize("char", ["\u202e", "\x1b", "\x00", "\u2028", "\x85", "\u2066"])
def test_control_and_bidi_characters_in_a_filter_are_refused(log_dir, staff_client, field, char):
    from urllib.parse import quote

    response = staff_client.get(f"{LIST}?{field}={quote('ab' + char + 'cd')}")
    assert response.status_code == 400
    html = response.content.decode()
    assert char not in html
    assert f"{field}:" in page(response).text  # the error names the field
    assert "ab\\u202ecd" in html or char != "\u202e"  # shown escaped in the search box


# --- Bounded work per page (finding 22) ------------------------------------------------------


def test_page_1000_and_the_story_of_a_dot_are_bounded(
    tmp_path, settings, staff_client, monkeypatch
):
    from observability.logtrace import listing
    from observability.logtrace import requests as requests_module
    from observability.viewer import views

    settings.LOG_BASE_DIR = str(tmp_path)
    lines = []
    for n in range(3000):
        lines += request_lines(f"r.{n:04d}", T0 + timedelta(seconds=n))
    write(tmp_path / "billing_api_requests.log", lines)
    monkeypatch.setattr(views, "BUDGET", listing.Budget(lines=1500, parsed=300))
    read, parsed = [], []
    real_newest, real_parse = listing.newest_first, requests_module.parse_line

    def newest(*args, **kwargs):
        for item in real_newest(*args, **kwargs):
            read.append(1)
            yield item

    monkeypatch.setattr(listing, "newest_first", newest)
    monkeypatch.setattr(
        requests_module, "parse_line", lambda *a, **k: parsed.append(1) or real_parse(*a, **k)
    )
    response = staff_client.get(LIST + "?page=1000")
    assert response.status_code == 200 and len(read) <= 1500
    text = " ".join(page(response).text.split())
    assert "Partial results" in text and "narrow the filters" in text
    assert [a for a in page(response).find("a", "continue") if "before=" in a["href"]]
    assert staff_client.get(f"{LIST}./").status_code == 404
    assert parsed == []  # every line holds a dot: none is read for the story of "."


def test_continuing_a_partial_page_shows_every_request_once(
    tmp_path, settings, staff_client, monkeypatch
):
    from observability.logtrace import listing
    from observability.viewer import views

    settings.LOG_BASE_DIR = str(tmp_path)
    lines = []
    for n in range(600):
        lines += request_lines(
            f"r{n:04d}", T0 + timedelta(seconds=n), user="bob" if n % 4 else "al"
        )
    write(tmp_path / "billing_api_requests.log", lines)
    monkeypatch.setattr(views, "BUDGET", listing.Budget(lines=200, parsed=100))
    url, seen = LIST + "?user=al", []
    for _ in range(100):
        parsed = page(staff_client.get(url))
        seen += [a["href"].split("/")[3] for a in parsed.find("a", "open-link")]
        older = [a["href"] for a in parsed.find("a") if a.get("rel") == "next"]
        more = [a["href"] for a in parsed.find("a", "continue")]
        if not older and not more:
            break
        url = LIST + (older or more)[0]
    assert seen == [f"r{n:04d}" for n in range(599, -1, -1) if n % 4 == 0]


def test_a_story_page_draws_a_bounded_number_of_records_and_requests(
    tmp_path, settings, staff_client
):
    """One request with 1,500 records, and an ID sent by 400 requests: the page stays bounded."""
    settings.LOG_BASE_DIR = str(tmp_path)
    write(
        tmp_path / "billing_api_requests.log",
        request_lines("chatty", T0, duration=10.0, span_id="c" * 16)
        + [
            line
            for n in range(400)
            for line in request_lines("same", T0 + timedelta(seconds=n), span_id=f"{n:016x}")
        ],
    )
    write(
        tmp_path / "billing_api.log",
        [
            text_line(
                T0 + timedelta(milliseconds=n + 1),
                f"step {n}",
                request_id="chatty",
                span_id="c" * 16,
            )
            for n in range(1500)
        ],
    )
    parsed = page(staff_client.get(f"{LIST}chatty/"))
    records = parsed.find("li", "record")
    assert len(records) == 1000  # views.RECORDS_SHOWN: the first 800 and the last 200
    assert "API Request completed" in parsed.text  # the end is drawn, the middle left out
    assert "502 records not drawn" in " ".join(parsed.text.split())
    shared = page(staff_client.get(f"{LIST}same/"))
    assert "shared by 400 requests" in shared.text
    occurrences = [a for a in shared.find("a") if (a["href"] or "").startswith("?at=")]
    assert len(occurrences) == 49  # views.OCCURRENCES_SHOWN around the one shown (no link)
    assert "350 older ones, then" in " ".join(shared.text.split())
