"""The trace viewer in a real headless Chromium against a real gunicorn.

Debian's `chromium` and `chromium-driver` (tests/e2e/browser.py). Without them the test is
skipped with a hint, except under CI=true where it fails.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from observability.logtrace import parse_line
from tests.e2e.browser import WAIT, chromium, require_browser, save_screenshot
from tests.e2e.servers import gunicorn, prepare_db, read_all, server_env
from tests.polling import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

HOSTILE_UA = (
    '<script>window.__pwned = 1</script>"><img src=x onerror="window.__pwned = 2">'
    '<svg onload="window.__pwned = 3">'
)
GENERAL = "billing_api.log"
REQUESTS = "billing_api_requests.log"
ERRORS = "billing_api_errors.log"


@pytest.fixture
def server(tmp_path):
    require_browser()
    env = server_env(
        tmp_path, DJANGO_SETTINGS_MODULE="tests.e2e.settings", SLOW_REQUEST_THRESHOLD="0.25"
    )
    prepare_db(env)
    running = gunicorn(tmp_path, "-w", "2", env=env)
    running.log_dir = Path(env["LOG_BASE_DIR"])
    yield running
    running.stop()


@pytest.fixture
def browser(tmp_path):
    yield from chromium(tmp_path)


def wait_for_lines(log_dir: Path, expected: dict[str, list[tuple[str, str]]]) -> None:
    """Until each request's lines the test reads are on disk, each in its own file: the
    writer runs off the request thread and groups a batch by file, so one file's lines say
    nothing of another's. `expected`: {request ID: [(file, text of the line)]}."""
    for rid, lines in expected.items():
        for name, text in lines:
            wait_for(
                lambda name=name, text=text, rid=rid: any(
                    f"request_id={rid} " in line and text in line
                    for line in read_all(log_dir, name)
                ),
                f"the {text!r} line of {rid} in {name}",
            )


def csp_violations(driver) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]


def test_staff_find_a_failing_request_from_the_admin_and_read_its_timeline(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    token = server.token()
    status, headers, body = server.request(
        "POST",
        "/api/v1/payments/",
        {"amount": "12.00", "currency": "USD", "payment_method": "pm_card_visa"},
        token,
    )
    assert status == 201, body
    ids = {"pay": headers["X-Request-ID"], "payment_id": json.loads(body)["id"]}
    # 2 s of 0.25 s of threshold: the gap outweighs any overhead a loaded machine adds
    status, headers, _ = server.request("GET", "/t/slow-report/?s=2", token=token)
    assert status == 200
    ids["slow"] = headers["X-Request-ID"]
    status, headers, _ = server.request("POST", "/t/failing-charge/", {}, token)
    assert status == 500
    ids["fail"] = headers["X-Request-ID"]
    status, headers, _ = server.request(
        "GET", "/api/v1/payments/", token=token, headers={"User-Agent": HOSTILE_UA}
    )
    assert status == 200
    ids["evil"] = headers["X-Request-ID"]
    wait_for_lines(
        server.log_dir,
        {
            ids["pay"]: [(REQUESTS, "API Request completed"), (GENERAL, "payment_succeeded")],
            ids["slow"]: [
                (REQUESTS, "API Request completed"),
                (REQUESTS, "Slow API request detected"),
                (GENERAL, "report: ledger answered"),
            ],
            ids["fail"]: [
                (REQUESTS, "API Request failed"),
                (ERRORS, "ValueError: gateway answered garbage"),
            ],
            ids["evil"]: [(REQUESTS, "API Request completed")],
        },
    )

    b = browser
    wait = WebDriverWait(b, WAIT)

    # Log in through the admin's login page.
    b.get(server.base + "/admin/")
    wait.until(ec.presence_of_element_located((By.ID, "id_username")))
    b.find_element(By.ID, "id_username").send_keys("admin")
    b.find_element(By.ID, "id_password").send_keys("admin-demo-pass")
    b.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(ec.title_contains("Site administration"))

    # Three clicks from the admin: Users, the customer, their failed requests.
    b.find_element(By.LINK_TEXT, "Users").click()
    wait.until(ec.presence_of_element_located((By.LINK_TEXT, "alice"))).click()
    # (the admin's object tools are upper-cased by its CSS: found by class, not text)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "a.trace-failed"))).click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "table.requests")))
    rows = b.find_elements(By.CSS_SELECTOR, "table.requests tbody tr")
    assert len(rows) == 1
    assert "/t/failing-charge/" in rows[0].text and "500" in rows[0].text
    save_screenshot(b, "trace-viewer-list.png")

    # The failing request: its timeline, one mark per record, and its traceback.
    rows[0].find_element(By.CSS_SELECTOR, "a.open-link").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#timeline.drawn svg")))
    records = b.find_elements(By.CSS_SELECTOR, "ol.records > li.record")
    marks = b.find_elements(By.CSS_SELECTOR, "#timeline svg .mark")
    assert len(records) >= 4  # started, the view's line, Django's error, failed
    assert len(marks) == len(records)
    lanes = [t.text for t in b.find_elements(By.CSS_SELECTOR, "#timeline svg .lane-name")]
    assert lanes[0] == "requests"
    # A record written to two files is one mark and one entry, naming both files.
    files = [r.find_element(By.CSS_SELECTOR, ".file").text for r in records]
    assert "requests+errors" in files and "general+errors" in files
    traceback = b.find_element(By.CSS_SELECTOR, "details.traceback")
    pre = traceback.find_element(By.TAG_NAME, "pre")
    assert traceback.get_attribute("open") is None and not pre.is_displayed()
    traceback.find_element(By.TAG_NAME, "summary").click()
    wait.until(lambda _: pre.is_displayed())
    assert "ValueError: gateway answered garbage" in pre.text
    assert "Traceback (most recent call last):" in pre.text
    save_screenshot(b, "trace-viewer-failed.png")

    # The slow request: the gap before the ledger answered, the threshold on the axis.
    # (logging in is slow too: password hashing takes longer than this test's threshold;
    # on a loaded machine any other request may pass 0.25 s as well, so the list is of
    # this one path: the slow filter must show it)
    b.get(server.base + "/ops/requests/?slow=1&path=/t/slow-report/")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "table.requests")))
    slow_rows = b.find_elements(By.CSS_SELECTOR, "table.requests tbody tr")
    assert len(slow_rows) == 1 and "/t/slow-report/" in slow_rows[0].text
    slow_rows[0].find_element(By.CSS_SELECTOR, "a.open-link").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#timeline.drawn svg")))
    assert b.find_elements(By.CSS_SELECTOR, "#timeline svg line.threshold")
    marks = b.find_elements(By.CSS_SELECTOR, "#timeline svg .mark")
    assert len(marks) == len(b.find_elements(By.CSS_SELECTOR, "li.record"))
    offsets = sorted(float(m.get_attribute("x")) for m in marks)
    plot = b.find_element(By.CSS_SELECTOR, "#timeline svg").size["width"]
    assert max(later - x for x, later in itertools.pairwise(offsets)) > plot * 0.3, (
        "the slow ledger call must show as a wide gap"
    )
    save_screenshot(b, "trace-viewer.png")

    # The hostile user agent is shown, as text, and never runs.
    b.get(f"{server.base}/ops/requests/{ids['evil']}/")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#timeline.drawn svg")))
    assert b.find_element(By.CSS_SELECTOR, "dd.user-agent").text == HOSTILE_UA
    assert b.execute_script("return typeof window.__pwned") == "undefined"
    assert b.find_elements(By.CSS_SELECTOR, "main img, main svg[onload], main script") == []
    b.get(server.base + "/ops/requests/?user=alice")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "table.requests")))
    assert b.execute_script("return typeof window.__pwned") == "undefined"

    # The payment's story links to its admin page.
    b.get(f"{server.base}/ops/requests/{ids['pay']}/")
    link = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "dd.admin-links a")))
    link.click()
    wait.until(ec.url_contains(f"/admin/billing/payment/{ids['payment_id']}/change/"))
    assert "12.00" in b.page_source

    assert csp_violations(b) == []


def terminal_lines(log_dir: Path) -> int:
    return sum(
        1
        for line in read_all(log_dir, "billing_api_requests.log")
        if "API Request completed" in line or "API Request failed" in line
    )


def test_staff_read_the_overview_chart_counts_and_top_error_group(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    token = server.token()
    expected: dict[str, list[tuple[str, str]]] = {}
    for _ in range(3):
        status, headers, _ = server.request("POST", "/t/failing-charge/", {}, token)
        assert status == 500
        expected[headers["X-Request-ID"]] = [(REQUESTS, "API Request failed"), (ERRORS, "")]
    for _ in range(4):
        status, headers, _ = server.request("GET", "/api/v1/payments/", token=token)
        assert status == 200
        expected[headers["X-Request-ID"]] = [(REQUESTS, "API Request completed")]
    ids = list(expected)
    wait_for_lines(server.log_dir, expected)

    b = browser
    wait = WebDriverWait(b, WAIT)
    b.get(server.base + "/admin/login/?next=/ops/overview/")
    wait.until(ec.presence_of_element_located((By.ID, "id_username")))
    b.find_element(By.ID, "id_username").send_keys("admin")
    b.find_element(By.ID, "id_password").send_keys("admin-demo-pass")
    before = terminal_lines(server.log_dir)
    b.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#overview-chart.drawn svg")))
    after = terminal_lines(server.log_dir)

    # The chart: one panel a series, bars where there were requests, errors and slow ones.
    panels = b.find_elements(By.CSS_SELECTOR, "#overview-chart svg g.panel")
    assert [p.get_attribute("class") for p in panels] == [
        "panel panel-requests",
        "panel panel-errors",
        "panel panel-slow",
    ]
    assert b.find_elements(By.CSS_SELECTOR, "#overview-chart svg rect.bar.series-requests")
    error_bars = b.find_elements(By.CSS_SELECTOR, "#overview-chart svg rect.bar.series-errors")
    assert 1 <= len(error_bars) <= 2  # the burst's minute (or two, across a minute's turn)
    assert b.find_elements(By.CSS_SELECTOR, "#overview-chart svg text.tick-label")

    # The counts: our three failures; every request that had ended when the page was read.
    assert b.find_element(By.ID, "total-errors").text == "3"
    shown = int(b.find_element(By.ID, "total-requests").text)
    assert before <= shown <= after and shown >= len(ids) + 1  # + the token request

    # The top error group names the exception, the view and our frame; it opens its story.
    row = b.find_element(By.CSS_SELECTOR, "table.error-groups tbody tr")
    cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
    assert cells[0].startswith("ValueError") and "gateway answered garbage" in cells[0]
    assert cells[1].startswith("tests.e2e.urls.")  # DRF's @api_view: its WrappedAPIView
    assert cells[2].startswith("tests/e2e/urls.py in failing_charge")
    assert cells[3] == "3" and cells[4] == "1"  # three failures, one user (alice)
    route = b.find_element(By.CSS_SELECTOR, "table.routes-errors tbody tr td.route").text
    assert route == "t/failing-charge/"
    save_screenshot(b, "trace-viewer-overview.png")
    row.find_element(By.CSS_SELECTOR, "a.example-link").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#timeline.drawn svg")))
    assert b.current_url.startswith(f"{server.base}/ops/requests/{ids[2]}/?at=")

    assert csp_violations(b) == []


@pytest.fixture
def slow_gateway(tmp_path):
    """The real app whose sandbox gateway takes 0.4 s a call, as a network round trip."""
    require_browser()
    env = server_env(tmp_path, SANDBOX_GATEWAY_DELAY="0.4")
    prepare_db(env)
    running = gunicorn(tmp_path, "-w", "1", env=env)
    running.log_dir = Path(env["LOG_BASE_DIR"])
    yield running
    running.stop()


def test_a_declined_payments_waterfall_shows_the_gateway_took_the_time(slow_gateway, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    server = slow_gateway
    body = {"amount": "12.00", "currency": "USD", "payment_method": "pm_card_declined"}
    status, headers, _ = server.request("POST", "/api/v1/payments/", body, server.token())
    assert status == 402
    rid = headers["X-Request-ID"]
    wait_for_lines(
        server.log_dir, {rid: [(REQUESTS, "API Request"), (GENERAL, "Span gateway.charge")]}
    )

    b = browser
    wait = WebDriverWait(b, WAIT)
    b.get(server.base + "/admin/login/")
    wait.until(ec.presence_of_element_located((By.ID, "id_username")))
    b.find_element(By.ID, "id_username").send_keys("admin")
    b.find_element(By.ID, "id_password").send_keys("admin-demo-pass")
    b.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(ec.title_contains("Site administration"))
    b.get(f"{server.base}/ops/requests/{rid}/")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#waterfall.drawn svg")))

    # The gateway slept 0.4 s: its span line says so, and the page shows the logged time.
    # How much of the request that is depends on how busy the machine was, so what is
    # checked is the drawing: every bar as wide as its logged share of the request.
    (span,) = [
        record
        for record in map(parse_line, read_all(server.log_dir, GENERAL))
        if record is not None
        and record.fields.get("request_id") == rid
        and record.message.startswith("Span gateway.charge")
    ]
    gateway_ms = float(span.fields["duration"]) * 1000
    assert gateway_ms >= 400
    figure = b.find_element(By.ID, "waterfall")
    bars = figure.find_elements(By.CSS_SELECTOR, "ol.waterfall-rows > li.bar")
    segments = [
        [tuple(map(float, pair.split(":"))) for pair in bar.get_attribute("data-segments").split()]
        for bar in bars
    ]
    end = max(
        float(figure.get_attribute("data-span-ms")),
        *(start + length for row in segments for start, length in row),
    )
    (request,) = [
        float(rect.get_attribute("width"))
        for rect in b.find_elements(By.CSS_SELECTOR, "#waterfall svg rect.kind-request")
    ]
    rows = b.find_elements(By.CSS_SELECTOR, "#waterfall svg g.bar-row")
    names = [row.find_element(By.CSS_SELECTOR, "text.row-name").text for row in rows]
    assert "gateway.charge" in names
    gateway = rows[names.index("gateway.charge")]
    (gateway_segment,) = segments[names.index("gateway.charge")]
    assert abs(gateway_segment[1] - gateway_ms) < 0.01, (gateway_segment, gateway_ms)
    assert len(rows) == len(segments)
    for row, row_segments in zip(rows, segments, strict=True):
        widths = [
            float(r.get_attribute("width"))
            for r in row.find_elements(By.CSS_SELECTOR, "rect.bar-rect")
        ]
        wanted = [max(length / end * request, 2) for _, length in row_segments]
        assert widths == pytest.approx(wanted, abs=0.01), (row.text, widths, wanted)
    split = b.find_element(By.CSS_SELECTOR, "section.where-time-went").text
    assert "our own code" in split and "database" in split
    # Hovering the gateway's bar marks its record in the list below.
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(b).move_to_element(gateway).perform()
    highlighted = b.find_elements(By.CSS_SELECTOR, "li.record.highlight")
    assert len(highlighted) == 1 and "Span gateway.charge" in highlighted[0].text
    save_screenshot(b, "trace-viewer-waterfall.png")
    assert csp_violations(b) == []
