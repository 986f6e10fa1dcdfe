"""Deeply nested JSON is a clear 400, never a RecursionError 500."""

from __future__ import annotations

import pytest

from billing.parsers import MAX_DEPTH, nesting_depth

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/auth/token/", "/api/v1/payments/"])
def test_a_thousand_nested_arrays_is_a_400_without_auth(anon, path):
    response = anon.generic("POST", path, b"[" * 1000, content_type="application/json")
    assert response.status_code in (400, 401)
    if path.endswith("token/"):
        assert response.status_code == 400
        body = response.json()["error"]
        assert "nested deeper than" in body["message"] and body["request_id"]


def test_deep_nesting_inside_an_object_is_a_400(api):
    body = b'{"amount": ' + b"[" * 200 + b"]" * 200 + b"}"
    response = api.generic("POST", "/api/v1/payments/", body, content_type="application/json")
    assert response.status_code == 400
    assert "nested deeper than" in response.json()["error"]["message"]


def test_brackets_inside_strings_do_not_count():
    text = b'{"note": "' + b"[" * 100 + b'\\"[[[", "a": [[1]]}'
    assert nesting_depth(text) == 3


@pytest.mark.parametrize("depth", [1, MAX_DEPTH])
def test_depth_up_to_the_limit_parses(anon, depth):
    body = b'{"username": "x", "password": "y", "n": ' + b"[" * (depth - 1) + b"]" * (depth - 1)
    body = body + b"}" if depth > 1 else b'{"username": "x", "password": "y"}'
    response = anon.generic("POST", "/api/v1/auth/token/", body, content_type="application/json")
    assert response.status_code == 401  # parsed; wrong credentials
