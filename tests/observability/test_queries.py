"""Database queries inside a request, as a user reads them in the files: counts on the terminal
line, one record per query in the debug file, the N+1 warning, the slow query warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import AsyncClient, Client

from billing.models import Plan, Subscription
from tests.conftest import NOT_SLOW, configure_logs, parse_tokens
from tests.observability import urls_spans

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.observability.urls_spans")]


@pytest.fixture
def debug_logs(tmp_path):
    return configure_logs(tmp_path / "logs", debug=True)


def terminal(logs, response):
    rid = response["X-Request-ID"]
    lines = [line for line in logs.for_request(rid) if "API Request " in line]
    ended = [line for line in lines if "completed" in line or "failed" in line]
    assert len(ended) == 1, lines
    return rid, parse_tokens(ended[0])


def records(logs, rid, event_type, name="general"):
    return [
        parse_tokens(line)
        for line in logs.lines(name)
        if f"request_id={rid} " in line and f"event_type={event_type}" in line
    ]


def test_n_plus_one_is_one_warning_with_its_count_and_the_views_line(logs):
    owners = [get_user_model().objects.create_user(f"user{i}") for i in range(30)]
    for i, owner in enumerate(owners):
        plan = Plan.objects.create(name=f"P{i}", code=f"p{i}", amount="1.00", currency="USD")
        Subscription.objects.create(user=owner, plan=plan)
    response = Client().get("/s/n-plus-one/")
    assert response.status_code == 200
    rid, fields = terminal(logs, response)
    assert fields["db_queries"] == "31"
    warnings = records(logs, rid, "repeated_query")
    assert len(warnings) == 1, warnings
    (warning,) = warnings
    assert warning["count"] == "30"
    assert '"billing_plan"' in warning["sql"] and "= ?" in warning["sql"]
    source = Path(urls_spans.n_plus_one_view.__code__.co_filename).read_text().splitlines()
    line = next(n for n, text in enumerate(source, 1) if "subscription.plan.code" in text)
    assert warning["site"] == f"tests/observability/urls_spans.py:{line}"
    assert warning["site_function"] == "n_plus_one_view"
    repeated = [x for x in logs.lines("general") if "repeated_query" in x]
    assert repeated[0].split()[2] == "WARNING"


def test_three_distinct_queries_are_counted_without_a_warning(logs):
    response = Client().get("/s/three/")
    rid, fields = terminal(logs, response)
    assert fields["db_queries"] == "3"
    assert float(fields["db_time"]) > 0
    assert records(logs, rid, "repeated_query") == []


def test_the_terminal_line_keeps_the_seeds_fields_in_place_and_appends_the_counts(logs):
    response = Client().get("/s/three/")
    _, fields = terminal(logs, response)
    keys = list(fields)
    assert keys.index("view") < keys.index("db_queries") < keys.index("db_time")


def test_json_lines_carry_the_counts_as_numbers(tmp_path):
    logs = configure_logs(tmp_path / "logs", log_format="json")
    response = Client().get("/s/three/")
    rid = response["X-Request-ID"]
    (line,) = [
        json.loads(x) for x in logs.lines("requests") if rid in x and "API Request completed" in x
    ]
    assert line["db_queries"] == 3
    assert isinstance(line["db_time"], float)
    response = Client().get("/t/plain/")  # no query: still numbers
    rid = response["X-Request-ID"]
    (line,) = [
        json.loads(x) for x in logs.lines("requests") if rid in x and "API Request completed" in x
    ]
    assert line["db_queries"] == 0 and line["db_time"] == 0.0
    assert isinstance(line["db_time"], float)


def test_every_query_is_a_debug_record_with_its_shape_and_own_span(debug_logs):
    response = Client().get("/s/three/")
    rid, fields = terminal(debug_logs, response)
    queries = records(debug_logs, rid, "db_query", "debug")
    assert len(queries) == 3
    spans = {query["child_span_id"] for query in queries}
    assert len(spans) == 3 and fields["span_id"] not in spans
    assert all(len(span) == 16 for span in spans)
    assert any("LIMIT ?" in query["sql"] or "= ?" in query["sql"] for query in queries)
    assert all(float(query["duration"]) >= 0 for query in queries)


def test_a_raw_querys_card_number_and_password_reach_no_file(debug_logs):
    response = Client().get("/s/raw-secret/")
    rid, fields = terminal(debug_logs, response)
    assert fields["db_queries"] == "1"
    (query,) = records(debug_logs, rid, "db_query", "debug")
    assert query["sql"] == "SELECT COUNT(*) FROM billing_plan WHERE code = ? OR name = ?"
    everything = debug_logs.everything()
    for secret in ("4111", "hunter2", "Secret"):
        assert secret not in everything


def test_a_query_that_raises_has_its_error_and_is_counted_on_the_failed_line(debug_logs):
    response = Client(raise_request_exception=False).get("/s/bad-query/")
    assert response.status_code == 500
    rid, fields = terminal(debug_logs, response)
    assert fields["db_queries"] == "1"
    (query,) = records(debug_logs, rid, "db_query", "debug")
    from django.db import connection

    # a missing table: SQLite's driver says OperationalError, psycopg ProgrammingError
    expected = "OperationalError" if connection.vendor == "sqlite" else "ProgrammingError"
    assert query["error"] == expected
    (failed,) = [x for x in debug_logs.for_request(rid) if "API Request failed" in x]
    assert f"Error: {expected}" in failed


def test_executemany_is_counted(debug_logs):
    response = Client().get("/s/many/")
    rid, fields = terminal(debug_logs, response)
    assert fields["db_queries"] == "1"
    (query,) = records(debug_logs, rid, "db_query", "debug")
    assert query["many"] == "True"


@pytest.mark.django_db(transaction=True)
def test_threads_given_the_context_and_other_connections_are_counted(debug_logs):
    response = Client().get("/s/thread/")
    rid, fields = terminal(debug_logs, response)
    assert fields["db_queries"] == "3"  # this thread, a carried thread, another connection
    aliases = {query["db_alias"] for query in records(debug_logs, rid, "db_query", "debug")}
    assert aliases == {"default", "other"}


async def test_an_async_views_queries_in_sync_to_async_are_counted(logs):
    response = await AsyncClient().get("/s/async/")
    assert response.status_code == 200
    _, fields = terminal(logs, response)
    assert fields["db_queries"] == "2"


def test_a_slow_query_is_a_warning_with_its_duration_and_shape(logs, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "SLOW_QUERY_THRESHOLD": 1e-9}
    response = Client().get("/s/three/")
    rid, _ = terminal(logs, response)
    slow = records(logs, rid, "slow_query")
    assert len(slow) == 3
    assert all(float(x["duration"]) > 0 and 'FROM "billing_' in x["sql"] for x in slow)
    assert all(x["threshold"] == "1e-09" for x in slow)


def test_the_repeated_query_thresholds_are_settings(logs, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "REPEATED_QUERY_COUNT": 2, "REPEATED_QUERY_TIME": 3600.0}
    Client().get("/s/three/")
    response = Client().get("/s/n-plus-one/")  # no rows: one query
    rid, _ = terminal(logs, response)
    assert records(logs, rid, "repeated_query") == []


def test_off_means_no_counts(logs, settings):
    settings.OBSERVABILITY = {**NOT_SLOW, "DB_QUERIES": False}
    response = Client().get("/s/three/")
    _, fields = terminal(logs, response)
    assert "db_queries" not in fields and "db_time" not in fields
