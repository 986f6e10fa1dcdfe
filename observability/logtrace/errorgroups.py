"""What a failed request's terminal line says about its error: what kind, and where in our code.

An error group is (exception type, view, innermost frame of our own code): the failures
one fix removes. The type is the traceback's last line's (`billing.gateway.GatewayTimeout`),
else the terminal line's `Error: <name>`, else `HTTP <status>` (a view that answered 500
without raising). "Our own code" is every frame outside the interpreter's library and
installed packages (`site-packages`, `dist-packages`); the frame is named by its file and
function, not its line, so an edit above it does not split the group (the page shows the
newest example's line). Everything here comes from a log line: the caller escapes it.
"""

from __future__ import annotations

import re
import sysconfig
from dataclasses import dataclass
from pathlib import PurePath

from observability.lines import messages
from observability.masking.escaping import unescape_traceback
from observability.masking.redaction import get_redactor

_FRAME = re.compile(r'^\s*File "([^"\n]{1,1024})", line (\d{1,9}), in ([^\n]{1,256})$', re.M)
_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,200}")
_LIBRARY_PARTS = ("/site-packages/", "/dist-packages/", "\\site-packages\\")
_STDLIB = tuple(
    dict.fromkeys(
        path.rstrip("/") + "/"
        for path in (sysconfig.get_paths().get("stdlib"), sysconfig.get_paths().get("platstdlib"))
        if path
    )
)
#: The most characters of an exception's message kept (the page shows the newest example's).
MESSAGE_KEPT = 160
NONE = "-"


@dataclass(frozen=True)
class ErrorKind:
    """An error's group key and what the page shows of its example."""

    exception: str  # the type: `ValueError`, `billing.gateway.GatewayTimeout`, `HTTP 500`
    frame: str  # `billing/services.py in payment_create`, or "-" when no frame is ours
    line: str  # the frame's line number in this example ("" without one)
    message: str  # the exception's message in this example, capped


def own_frame(path: str, base: str | None = None) -> bool:
    """Whether a traceback frame's file is our code: not the interpreter's, not a package's."""
    if path.startswith("<") or any(part in path for part in _LIBRARY_PARTS):
        return False
    if base and path.startswith(base):
        return True
    return not path.startswith(_STDLIB)


def _relative(path: str, base: str | None) -> str:
    if base and path.startswith(base):
        return str(PurePath(path).relative_to(base))
    return path


def error_kind(message: str, status: str, traceback: str, base: str | None = None) -> ErrorKind:
    """The kind of error a failed terminal line (its message, status and escaped traceback)
    tells; `base`: the project's directory, shown relative (settings.BASE_DIR)."""
    text = unescape_traceback(traceback) if traceback else ""
    exception, said = "", ""
    if text:
        last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
        head, _, said = last.partition(":")
        if _TYPE.fullmatch(head.strip()):
            exception = head.strip()
        else:
            said = ""
    if not exception and message.startswith(messages.FAILED):
        named = message.rpartition("Error: ")[2].strip()
        if named != NONE and _TYPE.fullmatch(named):
            exception = named
    if not exception:
        exception = f"HTTP {status}"
    frame, line = NONE, ""
    base = base.rstrip("/") + "/" if base else None
    for match in reversed(list(_FRAME.finditer(text))):
        path, number, function = match.groups()
        if own_frame(path, base):
            frame, line = f"{_relative(path, base)} in {function.strip()}", number
            break
    # masked whole, then capped: a line a foreign writer left unmasked shows no card either
    return ErrorKind(exception, frame, line, get_redactor().text(said.strip(), MESSAGE_KEPT))
