"""`make demo` (seed_demo --traffic): every kind of line and page to explore, the hints on the
port `make` was given; `make run PORT=...` serves and hints on that port."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from tests.conftest import parse_tokens

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_make_demo_leaves_something_worth_exploring(logs, settings):
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, "SLOW_REQUEST_THRESHOLD": 0.2}
    settings.LOG_BASE_DIR = str(logs.path)
    out = io.StringIO()
    call_command("seed_demo", "--traffic", "--base-url", "http://127.0.0.1:8123", stdout=out)
    printed = out.getvalue()
    assert "curl -s -X POST http://127.0.0.1:8123/api/v1/auth/token/" in printed
    assert "Trace viewer: http://127.0.0.1:8123/ops/requests/" in printed
    assert "Metrics: http://127.0.0.1:8123/metrics" in printed
    assert "8000" not in printed
    stories = dict(
        re.findall(r"  (a [^:]+): \d+  http://127\.0\.0\.1:8123/ops/requests/([^/]+)/", printed)
    )
    assert set(stories) >= {
        "a declined payment",
        "a refused refund",
        "a slow payment",
        "a failed request with its traceback",
    }
    requests = logs.lines("requests")

    def lines_of(rid: str) -> list[str]:
        return [line for line in requests if f"request_id={rid} " in line]

    assert any("Status: 402" in line for line in lines_of(stories["a declined payment"]))
    assert any("Slow API request detected" in line for line in lines_of(stories["a slow payment"]))
    failed = stories["a failed request with its traceback"]
    assert any("API Request failed - Status: 500" in line for line in lines_of(failed))
    errors = [line for line in logs.lines("errors") if f"request_id={failed} " in line]
    assert errors and all(" | Traceback (most recent call last):" in line for line in errors)
    general = logs.text("general")
    assert "payment_failed" in general and "refund_refused" in general
    security = [parse_tokens(line) for line in logs.lines("security")]
    failed_logins = [t for t in security if t.get("event_type") == "login_failed"]
    assert len(failed_logins) >= 5 and {t["ip"] for t in failed_logins} == {"203.0.113.66"}
    assert any(t.get("event_type") == "login_throttled" for t in security)
    # Each story opens in the trace viewer.
    staff = Client()
    staff.force_login(get_user_model().objects.get(username="admin"))
    for rid in stories.values():
        page = staff.get(f"/ops/requests/{rid}/")
        assert page.status_code == 200 and rid in page.content.decode()


def test_make_run_serves_and_hints_on_the_port_it_was_given():
    dry = subprocess.run(
        ["make", "-n", "run", "PORT=8123", "HOST=127.0.0.1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "--bind 127.0.0.1:8123" in dry
    assert "seed_demo --base-url http://127.0.0.1:8123" in dry
    assert "http://127.0.0.1:8123/ops/requests/" in dry and "http://127.0.0.1:8123/metrics" in dry
    demo = subprocess.run(
        ["make", "-n", "demo", "PORT=8123"], cwd=ROOT, capture_output=True, text=True, timeout=60
    ).stdout
    assert "seed_demo --traffic --base-url http://127.0.0.1:8123" in demo


def test_the_admin_points_to_the_viewer_the_metrics_and_each_payments_story(logs, settings):
    from billing.models import Payment

    settings.LOG_BASE_DIR = str(logs.path)
    call_command("seed_demo", "--traffic", stdout=io.StringIO())
    staff = Client()
    staff.force_login(get_user_model().objects.get(username="admin"))
    home = staff.get("/admin/").content.decode()
    assert 'href="/ops/requests/" class="trace-viewer"' in home
    assert 'href="/metrics" class="metrics"' in home
    payment = Payment.objects.filter(status="failed").first()
    link = f'<a href="/ops/requests/{payment.request_id}/" class="request-story">{payment.request_id}</a>'
    assert link in staff.get(f"/admin/billing/payment/{payment.pk}/change/").content.decode()
    assert link in staff.get("/admin/billing/payment/").content.decode()
    story = staff.get(f"/ops/requests/{payment.request_id}/")
    assert story.status_code == 200 and "payment_failed" in story.content.decode()
