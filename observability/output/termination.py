"""SIGTERM drains the log queue: whatever the server does next, nothing waits in it."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from observability.output.writer import writer

SignalHandler = Callable[[int, FrameType | None], Any] | int | None
_previous_handlers: dict[int, SignalHandler] = {}


def _drain_on_signal(signum: int, frame: FrameType | None) -> None:
    """Write everything pending, switch to writing in place, then do what was done before.

    Pending: the final tick (flood summaries, held started lines of requests in flight),
    then the queue.

    Whatever the server does next (a graceful shutdown that logs more, or dying at once
    from a re-raised signal with no atexit), no record waits in the queue any more.
    """
    writer.synchronous = True
    writer.drain(5.0)
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous in (signal.SIG_DFL, None):
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)  # die of the signal, as the process would have


def drain_on_termination(signals: Sequence[int] = (signal.SIGTERM,)) -> bool:
    """Chain a drain of the log queue in front of each signal's current handler.

    For processes that do not exit through the interpreter's normal shutdown on SIGTERM
    (runserver, management commands, servers that re-raise the signal). Only the main
    thread may set signal handlers; elsewhere this does nothing and returns False.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    for signum in signals:
        current = signal.getsignal(signum)
        if current is _drain_on_signal or current == signal.SIG_IGN:
            continue
        _previous_handlers[signum] = current
        signal.signal(signum, _drain_on_signal)
    return True
