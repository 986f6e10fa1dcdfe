"""A database that fails us is a clear 503 or 409 in the one error shape, never a bare 500."""

from __future__ import annotations

import pytest
from django.test import Client

from billing import services
from observability.logtrace import parse_line
from tests.billing.database_failures import fail_database

pytestmark = pytest.mark.django_db

PAY = {"amount": "9.99", "currency": "USD", "payment_method": "pm_card_visa"}
EXPECTED = {
    "serialization": (409, "database_conflict"),
    "deadlock": (409, "database_conflict"),
    "lock_timeout": (503, "database_unavailable"),
    "unreachable": (503, "database_unavailable"),
}


def records_of(logs, name: str, request_id: str) -> list:
    return [
        record
        for record in map(parse_line, logs.lines(name))
        if record is not None and record.fields.get("request_id") == request_id
    ]


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_database_failure_in_an_api_view_is_a_clear_error_and_one_traceback(
    api, logs, monkeypatch, kind
):
    monkeypatch.setattr(services, "payment_create", lambda **kwargs: fail_database(kind))
    response = api.post("/api/v1/payments/", PAY, format="json")
    status, code = EXPECTED[kind]
    assert response.status_code == status, response.content
    rid = response["X-Request-ID"]
    error = response.json()["error"]
    assert (error["status"], error["code"], error["request_id"]) == (status, code, rid)
    assert "retry" in error["message"]
    assert response["Retry-After"] == "1"

    errors = records_of(logs, "errors", rid)
    with_traceback = [record for record in errors if record.traceback]
    assert len(with_traceback) == 1, [r.raw for r in errors]
    [record] = with_traceback
    assert record.logger == "billing.exception_handler"
    assert record.message.startswith(f"Database error answered with {status}: ")
    assert "OperationalError" in record.traceback
    # ...with the request's context, the user bound by the JWT included
    assert (record.fields["path"], record.fields["username"]) == ("/api/v1/payments/", "john_doe")


def test_serialization_failure_names_its_sqlstate(api, logs, monkeypatch):
    monkeypatch.setattr(services, "payment_create", lambda **kwargs: fail_database("serialization"))
    rid = api.post("/api/v1/payments/", PAY, format="json")["X-Request-ID"]
    [record] = [r for r in records_of(logs, "errors", rid) if r.traceback]
    assert record.fields["sqlstate"] == "40001"
    assert "SerializationFailure" in record.message


@pytest.mark.urls("tests.billing.urls_database_failure")
@pytest.mark.parametrize("kind", ["serialization", "unreachable"])
def test_database_failure_outside_drf_is_answered_by_handler500(logs, kind):
    response = Client(raise_request_exception=False).get(f"/plain/{kind}/")
    status, code = EXPECTED[kind]
    assert response.status_code == status
    rid = response["X-Request-ID"]
    assert response.json()["error"] == {
        "code": code,
        "message": response.json()["error"]["message"],
        "status": status,
        "request_id": rid,
    }
    assert any(record.traceback for record in records_of(logs, "errors", rid))


@pytest.mark.urls("tests.billing.urls_database_failure")
def test_other_exceptions_stay_500_in_the_same_shape(logs):
    response = Client(raise_request_exception=False).get("/broken/")
    assert response.status_code == 500
    error = response.json()["error"]
    assert (error["code"], error["status"]) == ("server_error", 500)
    assert error["request_id"] == response["X-Request-ID"]


def test_a_bad_query_on_sqlite_is_a_bug_not_an_outage(api, logs, monkeypatch):
    """SQLite calls bad SQL an OperationalError too: it must stay a 500, not a 503."""
    from django.db import connection

    def bad_query(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    monkeypatch.setattr(services, "payment_create", bad_query)
    with pytest.raises(Exception, match="no_such_table"):
        api.post("/api/v1/payments/", PAY, format="json")
