"""Through a real gunicorn: what a client writes in forwarding headers decides nothing.

gunicorn's REMOTE_ADDR is the socket's peer, 127.0.0.1 here: the test plays the proxy in
front (TRUSTED_PROXIES=1) and appends the remote client's address (CLIENT) to whatever the
client wrote, as nginx's $proxy_add_x_forwarded_for does. /metrics lets in MONITOR only, an
address that only a hop the proxy appended can show (REMOTE_ADDR, the fallback, is loopback).
"""

from __future__ import annotations

import http.client
import json
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.servers import Server, gunicorn, read_all

pytestmark = pytest.mark.e2e

CLIENT = "203.0.113.7"  # the remote client, as the proxy appended it
MONITOR = "192.0.2.10"  # the monitoring host, also behind the proxy


def written(last: str, length: int) -> str:
    """An X-Forwarded-For as a client writes it: exactly `length` characters, `last` at its end."""
    hops = "198.51.100.1, " * ((length - len(last)) // 14)
    return " " * (length - len(last) - len(hops)) + hops + last


def send(
    server: Server, method: str, path: str, headers: list[tuple[str, str]], body: dict | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request with headers as given, repeated names included (urllib would merge them)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.putrequest(method, path)
        for name, value in headers:
            connection.putheader(name, value)
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            connection.putheader("Content-Type", "application/json")
            connection.putheader("Content-Length", str(len(data)))
        connection.endheaders(data)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def fields(line: str) -> dict[str, str]:
    from observability.lines.textline import parse

    parsed = parse(line)
    assert parsed is not None, line
    return parsed.fields


def test_a_remote_client_cannot_choose_its_ip_or_read_the_metrics(tmp_path, env):
    # No slow warnings on a busy machine: each request has exactly its two lines.
    env.update(TRUSTED_PROXIES="1", METRICS_ALLOWED_IPS=MONITOR)
    server = gunicorn(tmp_path, "--workers", "2", env=env)
    attacks = {
        "4096 characters": [("X-Forwarded-For", f"{written(MONITOR, 4096)}, {CLIENT}")],
        "4096 ending in loopback": [("X-Forwarded-For", f"{written('127.0.0.1', 4096)}, {CLIENT}")],
        "8000 characters": [("X-Forwarded-For", f"{written(MONITOR, 8000)}, {CLIENT}")],
        "many headers": [("X-Forwarded-For", written(MONITOR, 4000))] * 60
        + [("X-Forwarded-For", CLIENT)],
        "Forwarded": [("Forwarded", f"for={MONITOR}"), ("X-Forwarded-For", CLIENT)],
        "X-Real-IP": [("X-Real-IP", MONITOR), ("X-Forwarded-For", CLIENT)],
    }
    try:
        # The setup can grant: the monitoring host, as the proxy names it, reads the metrics.
        status, _, body = send(server, "GET", "/metrics", [("X-Forwarded-For", MONITOR)])
        assert status == 200 and b"http_server" in body
        request_ids = {}
        for name, headers in attacks.items():
            status, _, body = send(server, "GET", "/metrics", headers)
            assert (status, b"http_server" in body) == (404, False), name
            status, response_headers, _ = send(server, "GET", "/api/v1/plans/", headers)
            assert status == 401, name
            request_ids[name] = response_headers["X-Request-ID"]
        # A last hop no proxy would write: the peer (loopback) is the answer, still no 200.
        headers = [("X-Forwarded-For", f"{MONITOR}, {'1' * 5000}")]
        assert send(server, "GET", "/metrics", headers)[0] == 404
    finally:
        assert server.stop() == 0
    log_dir = Path(env["LOG_BASE_DIR"])
    requests = read_all(log_dir, "billing_api_requests.log")
    for name, request_id in request_ids.items():
        lines = [line for line in requests if f"request_id={request_id} " in line]
        assert len(lines) == 2, (name, lines)
        assert {fields(line)["ip"] for line in lines} == {CLIENT}, name
    refused = [
        fields(line)
        for line in read_all(log_dir, "billing_api_security.log")
        if "event_type=metrics_access_refused" in line
    ]
    # Two workers write the file, each in its own batches: counted, not ordered.
    assert Counter(event["ip"] for event in refused) == {CLIENT: len(attacks), "127.0.0.1": 1}
    everything = "\n".join(
        line
        for name in ("billing_api.log", "billing_api_requests.log", "billing_api_security.log")
        for line in read_all(log_dir, name)
    )
    assert f"ip={MONITOR}" not in everything


def test_a_script_name_header_cannot_hide_a_login_attempt(tmp_path, env):
    """gunicorn takes SCRIPT_NAME from a header of a peer in --forwarded-allow-ips (127.0.0.1)."""
    server = gunicorn(tmp_path, env=env)
    try:
        status, headers, _ = send(
            server,
            "POST",
            "/health/api/v1/auth/token/",
            [("SCRIPT_NAME", "/health")],
            {"username": "alice", "password": "not-her-password"},
        )
        assert status == 401
        hidden_id = headers["X-Request-ID"]
        status, headers, _ = send(server, "GET", "/health/", [])
        assert status == 200
        health_id = headers["X-Request-ID"]
    finally:
        assert server.stop() == 0
    requests = read_all(Path(env["LOG_BASE_DIR"]), "billing_api_requests.log")
    lines = [line for line in requests if f"request_id={hidden_id} " in line]
    assert len(lines) == 2, lines
    assert "API Request started" in lines[0]
    completed = fields(lines[1])
    assert completed["status"] == "401" and completed["route"] == "api/v1/auth/token/"
    # /health/ itself is still excluded: the exclusion works, on the path the router matched.
    assert not [line for line in requests if f"request_id={health_id} " in line]
