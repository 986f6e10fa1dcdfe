"""logtrace and background tasks: a request's story holds the tasks it set off, each with its
outcome, in time order; `--task` starts from a task. Lines written by hand, as the files hold
them (a task's records carry the request's ID, and spans of their own)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.management import call_command

from tests.observability.loglines import T0, request_lines, text_line, write

pytestmark = pytest.mark.django_db
RID = "pay-1"
TASK = "5b2c9b1e-6c52-4e0a-9d0c-5a0d1f9e7a11"


def task_line(seconds: float, message: str, level: str = "INFO", **fields) -> str:
    return text_line(
        T0 + timedelta(seconds=seconds),
        message,
        level,
        "billing.tasks",
        request_id=RID,
        trace_id="ab" * 16,
        span_id=f"{int(seconds * 10):016x}",
        task_id=TASK,
        task_name="billing.webhook_deliver",
        **fields,
    )


@pytest.fixture
def story_dir(tmp_path):
    directory = tmp_path / "logs"
    write(
        directory / "billing_api_requests.log",
        request_lines(RID, T0, method="POST", path="/api/v1/payments/", span_id="1" * 16),
    )
    write(
        directory / "billing_api.log",
        [
            task_line(1, "Task billing.webhook_deliver started (attempt 1)", task_event="started"),
            task_line(
                1.1,
                "Task billing.webhook_deliver retried after 0.1s (attempt 1): HTTP 500",
                "WARNING",
                task_event="retried",
            ),
            task_line(2, "Task billing.webhook_deliver started (attempt 2)", task_event="started"),
            task_line(
                2.1, "Task billing.webhook_deliver succeeded in 0.1s", task_event="succeeded"
            ),
        ],
    )
    return directory


def run(capsys, *args) -> str:
    call_command("logtrace", *args)
    return capsys.readouterr().out


def test_a_requests_story_holds_its_tasks_as_one_request(story_dir, capsys):
    out = run(capsys, RID, "--dir", str(story_dir))
    assert "shared by" not in out  # the task's own spans are not other requests
    assert f"task {TASK} billing.webhook_deliver: succeeded (attempts: 2)" in out
    assert out.index("API Request completed") < out.index("started (attempt 1)")
    assert out.index("started (attempt 1)") < out.index("started (attempt 2)")


def test_logtrace_task_starts_from_a_task(story_dir, capsys):
    out = run(capsys, "--task", TASK, "--dir", str(story_dir))
    assert out.startswith(f"task {TASK} billing.webhook_deliver: succeeded (attempts: 2)")
    assert f"set off by request {RID}" in out
    assert out.count("[general ]") == 4 and "API Request" not in out


def test_logtrace_task_unknown_says_so(story_dir, capsys):
    with pytest.raises(SystemExit):
        call_command("logtrace", "--task", "nope", "--dir", str(story_dir))
    assert "nothing in" in capsys.readouterr().err


@pytest.mark.urls("tests.urls")
def test_the_viewer_lists_a_requests_tasks_and_draws_a_lane_for_each(story_dir, settings, staff):
    from django.test import Client

    settings.LOG_BASE_DIR = str(story_dir)
    client = Client()
    client.force_login(staff)
    html = client.get(f"/ops/requests/{RID}/").content.decode()
    assert "Background tasks" in html and "shared by" not in html
    assert f"<code>{TASK}</code> billing.webhook_deliver: <strong>succeeded</strong>" in html
    assert "(2 attempts," in html
    lane = f"task:{TASK[:8]}"
    assert f'data-lanes="requests {lane}"' in html, re.findall("data-lanes=[^>]*", html)
    assert html.count(f'data-lane="{lane}"') == 4


def test_tasks_join_the_request_that_published_them_when_two_requests_share_an_id(tmp_path, capsys):
    """A reused (or forged) request ID: each task's records go with the request whose line
    published it, not with whichever request started last before them."""
    directory = tmp_path / "logs"
    task_a, task_b = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"
    requests, general = [], []
    for n, (task, span) in enumerate(((task_a, "1" * 16), (task_b, "2" * 16))):
        start = T0 + timedelta(seconds=n)
        requests += request_lines(RID, start, method="POST", span_id=span, trace_id="cd" * 16)
        general.append(
            text_line(
                start + timedelta(milliseconds=5),
                "Task billing.webhook_deliver published",
                logger="billing.tasks",
                request_id=RID,
                span_id=span,
                task_event="published",
                published_task_id=task,
            )
        )
    for n, task in enumerate((task_a, task_b)):
        general.append(
            text_line(
                T0 + timedelta(seconds=3 + n),
                "Task billing.webhook_deliver started (attempt 1)",
                logger="billing.tasks",
                request_id=RID,
                span_id=f"{n + 7:016x}",
                task_id=task,
                task_name="billing.webhook_deliver",
                task_event="started",
            )
        )
    write(directory / "billing_api_requests.log", requests)
    write(directory / "billing_api.log", general)
    out = run(capsys, RID, "--dir", str(directory))
    first, second = out.split("--- request 2 of 2")
    assert f"task {task_a}" in first and task_b not in first
    assert f"task {task_b}" in second and task_a not in second


@pytest.mark.urls("tests.urls")
def test_the_viewer_lists_failed_and_retried_tasks_linked_to_their_requests(
    story_dir, settings, staff, logs
):
    from django.test import Client

    write(
        story_dir / "billing_api.log",
        [
            task_line(
                5,
                "Task billing.webhook_deliver failed in 0.1s (attempt 3): boom",
                "ERROR",
                task_event="failed",
                attempt=3,
            ),
            task_line(6, "Task probe.other succeeded in 0.1s", task_event="succeeded"),
        ],
    )
    settings.LOG_BASE_DIR = str(story_dir)
    client = Client()
    assert client.get("/ops/tasks/").status_code == 302  # staff only
    client.force_login(staff)
    html = client.get("/ops/tasks/").content.decode()
    assert html.count('class="task outcome-failed"') == 1
    assert html.count('class="task outcome-retried"') == 1
    assert "succeeded in" not in html
    assert html.index("outcome-failed") < html.index("outcome-retried")  # newest first
    assert f'href="/ops/requests/{RID}/"' in html
    assert "task_list_viewed" in logs.text("security")


def test_a_line_the_sweep_wrote_in_the_requests_name_is_no_second_request(story_dir, capsys):
    """The sweep publishes an overdue task in its request's context, with a span of its own:
    its published line belongs to that request's story, not to a request of its own."""
    write(
        story_dir / "billing_api.log",
        [
            text_line(
                T0 + timedelta(seconds=30),
                "Task billing.webhook_deliver published",
                logger="billing.tasks",
                request_id=RID,
                span_id="9" * 16,
                task_event="published",
                published_task_id="cccccccc-0000-4000-8000-000000000003",
            )
        ],
    )
    out = run(capsys, RID, "--dir", str(story_dir))
    assert "shared by" not in out and "--- request" not in out
    assert out.count("Task billing.webhook_deliver published") == 1


def test_the_tasks_a_request_set_off_are_rows_of_its_waterfall(tmp_path, capsys):
    """Each run of a task (its outcome line and duration) is a bar on the request's axis,
    after the request's own bar when it ran after the response; a failed run says so."""
    directory = tmp_path / "logs"
    write(
        directory / "billing_api_requests.log",
        request_lines(RID, T0, method="POST", path="/api/v1/payments/", span_id="1" * 16),
    )
    outcome = {"attempt": 1, "duration": 0.5}
    write(
        directory / "billing_api.log",
        [
            task_line(1, "Task billing.webhook_deliver started (attempt 1)", task_event="started"),
            task_line(
                1.5,
                "Task billing.webhook_deliver failed in 0.500s (attempt 1): boom",
                "ERROR",
                task_event="failed",
                **outcome,
            ),
        ],
    )
    out = run(capsys, RID, "--dir", str(directory))
    [row] = [line for line in out.splitlines() if line.lstrip().startswith("task |")]
    assert "500.0 ms billing.webhook_deliver (attempt 1) -> failed !failed" in row
    bar = row[row.index("|") + 1 : row.rindex("|")]
    assert bar.strip(" ") == "+" * len(bar.strip(" ")) and bar.endswith("+")  # last on the axis
    assert bar.startswith(" ")  # it began after the request did
