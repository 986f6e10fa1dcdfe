"""The tests' one way to wait: poll for the exact thing expected, with a bounded deadline.

A test never sleeps a fixed time and never compares a duration with a number: on a loaded
machine any fixed time can be too short. It waits for what it is about to assert (a line in
the file it reads, a status, a process gone), checking every `interval` seconds. The deadline
only bounds a failure, so it is generous: a green run never waits for it.
`tests/test_no_flaky_patterns.py` fails on a sleep or a wall-clock assertion anywhere else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")

DEADLINE = 30.0
INTERVAL = 0.05


def poll_until(
    condition: Callable[[], T],
    timeout: float = DEADLINE,
    interval: float = INTERVAL,
    between: Callable[[], object] | None = None,
) -> T:
    """Call `condition` until it returns something truthy or `timeout` seconds have passed;
    return its last value (falsy on a timeout: the caller asserts with its own message).

    `between` runs between two tries instead of the pause (traffic a server needs before the
    awaited thing can happen).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        if between is not None:
            between()
        else:
            time.sleep(interval)


def wait_for(
    condition: Callable[[], T],
    what: str,
    timeout: float = DEADLINE,
    interval: float = INTERVAL,
    between: Callable[[], object] | None = None,
) -> T:
    """Call `condition` until it returns something truthy, and return that; fail the test
    with "<what>: not within <timeout> s (last value: ...)" when the deadline passes."""
    value = poll_until(condition, timeout, interval, between)
    if not value:
        pytest.fail(f"{what}: not within {timeout} s (last value: {value!r})")
    return value
