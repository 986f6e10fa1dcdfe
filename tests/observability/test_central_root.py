"""Reading a central root (README, "Several hosts"): one folder per host, as rsyslog's central
server writes it. logtrace and the viewer merge the hosts by time, show each record's host,
gather a trace across hosts, filter by host, and show a record delivered twice once."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from observability.logtrace import Filters, list_requests, story
from tests.observability.loglines import T0, request_lines, text_line, write
from tests.observability.test_logtrace import run

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls")]

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
REQUESTS = "billing_api_requests.log"


def with_ids(lines: list[str], prefix: str) -> list[str]:
    """Each line with its record_id, as the app writes them."""
    return [f"{line} record_id={prefix}{n}" for n, line in enumerate(lines)]


@pytest.fixture
def root(tmp_path):
    """app-a served the first request of a trace, app-b the second (called by app-a); app-b's
    lines of its request arrived twice (at-least-once shipping), and app-b logged an error."""
    a = with_ids(request_lines("req-a", T0, path="/api/v1/orders/", trace_id=TRACE), "ra")
    b = with_ids(
        request_lines(
            "req-b", T0 + timedelta(milliseconds=5), path="/api/v1/plans/", trace_id=TRACE
        ),
        "rb",
    )
    other = with_ids(request_lines("req-c", T0 + timedelta(seconds=3)), "rc")
    error = text_line(
        T0 + timedelta(milliseconds=10), "plans failed", "ERROR", "billing", request_id="req-b"
    )
    write(tmp_path / "app-a" / REQUESTS, a)
    write(tmp_path / "app-b" / REQUESTS, [*b, *other, *b])  # b delivered twice
    write(tmp_path / "app-b" / "billing_api.log", [f"{error} record_id=e1"] * 2)
    return tmp_path


def test_a_story_names_its_host_and_shows_a_twice_delivered_record_once(root):
    found = story(root, "req-b")
    assert found is not None
    assert len(found.requests) == 1  # not "shared by 2 requests"
    assert found.summary.host == "app-b"
    assert [(r.host, r.lane) for r in found.records] == [
        ("app-b", "requests"),
        ("app-b", "general"),
        ("app-b", "requests"),
    ]


def test_a_listing_merges_the_hosts_by_time_and_filters_by_host(root):
    listed = list_requests(root, Filters(), 10)
    assert [(s.request_id, s.host) for s in listed] == [
        ("req-a", "app-a"),
        ("req-b", "app-b"),
        ("req-c", "app-b"),
    ]
    assert [s.request_id for s in list_requests(root, Filters(host="app-a"), 10)] == ["req-a"]


def test_logtrace_root_gathers_a_trace_across_hosts_each_once(root, capsys):
    code, out, _ = run(capsys, "--root", str(root), "--trace", TRACE, "--json")
    assert code == 0
    requests = json.loads(out)["requests"]
    assert [(r["request_id"], r["host"]) for r in requests] == [
        ("req-a", "app-a"),
        ("req-b", "app-b"),
    ]


def test_logtrace_root_prints_each_record_with_its_host(root, capsys):
    code, out, _ = run(capsys, "--root", str(root), "req-b")
    assert code == 0
    assert "served by host app-b" in out
    lines = [line for line in out.splitlines() if line.startswith("[app-b]")]
    assert len(lines) == 3  # two lifecycle lines and the error, each once
    assert sum("plans failed" in line for line in lines) == 1


def test_logtrace_root_refuses_a_directory_without_host_folders(tmp_path, capsys):
    write(tmp_path / REQUESTS, request_lines("r1", T0))
    with pytest.raises(CommandError) as raised:
        call_command("logtrace", "--root", str(tmp_path))
    assert raised.value.returncode == 2
    assert "--root" in str(raised.value) and "host folder" in str(raised.value)


def test_the_viewer_reads_log_root_and_filters_by_host(root, settings, staff):
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, "LOG_ROOT": str(root)}
    client = Client()
    client.force_login(staff)
    listing = client.get("/ops/requests/?host=app-b").content.decode()
    assert "req-b" in listing and "req-c" in listing and "req-a" not in listing
    assert "on app-b" in listing
    detail = client.get("/ops/requests/req-b/").content.decode()
    assert '<dd class="host">app-b</dd>' in detail
    assert detail.count("plans failed") == 1


def test_the_viewer_gathers_a_trace_across_hosts(root, settings, staff):
    settings.OBSERVABILITY = {**settings.OBSERVABILITY, "LOG_ROOT": str(root)}
    client = Client()
    client.force_login(staff)
    listing = client.get(f"/ops/requests/?trace={TRACE}").content.decode()
    assert "req-a" in listing and "on app-a" in listing
    assert "req-b" in listing and "on app-b" in listing
    assert "req-c" not in listing
