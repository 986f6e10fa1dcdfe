"""Tasks the end-to-end tests send to a real worker (loaded by tests.e2e.settings_celery)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import shared_task


@shared_task(name="probe.fail")
def fail(**kwargs: object) -> None:
    """Fails with its keyword argument in the message (a card number, in the test)."""
    msg = f"charge refused for card {kwargs.get('card')}"
    raise ValueError(msg)


@shared_task(name="probe.hold")
def hold(directory: str) -> str:
    """Writes its process ID, then waits (bounded) until the test writes `release`."""
    folder = Path(directory)
    (folder / f"pid-{os.getpid()}").write_text(str(os.getpid()))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (folder / "release").exists():
        time.sleep(0.05)
    return "released"
