"""The lifecycle lines' messages: written by the lifecycle, recognised by logtrace."""

from __future__ import annotations

STARTED = "API Request started"
COMPLETED = "API Request completed"
FAILED = "API Request failed"
SLOW = "Slow API request detected"
TERMINAL = (COMPLETED, FAILED)


def started(*, username: str, user_id: object, ip: str, method: str, path: str) -> str:
    return f"{STARTED} - User: {username} (ID: {user_id}), IP: {ip}, Method: {method}, Path: {path}"


def completed(*, status: int, duration: float) -> str:
    return f"{COMPLETED} - Status: {status}, Duration: {duration:.3f} seconds"


def failed(*, status: int, duration: float, error: str) -> str:
    return f"{FAILED} - Status: {status}, Duration: {duration:.3f} seconds, Error: {error}"


def slow(*, duration: float, threshold: float) -> str:
    return f"{SLOW} - Duration: {duration:.3f} seconds (threshold {threshold} seconds)"
