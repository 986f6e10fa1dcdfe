"""Whether a line's bytes can matter to a search (`listing`), before it is parsed.

A line is parsed only when it holds every value the filters name (as a text line writes
`key=value`, or as JSON and ECS lines write the value), and a message the filters leave
room for. Both are tests a line must pass, never reasons to skip one, so text a client
controls (a path that reads "API Request failed") can only make a line be parsed, never
hide a request.
"""

from __future__ import annotations

import re

from observability.lines import messages
from observability.lines.textline import render_field
from observability.logtrace.query import Filters

#: A value that text, JSON and ECS lines all write as it is can be looked for as bytes.
PLAIN = re.compile(r"[A-Za-z0-9@.+_:/<>-]+")
_TERMINAL = tuple(message.encode() for message in messages.TERMINAL)
_FAILED = messages.FAILED.encode()


class Needles:
    """Field values a line must hold: ` key=value` in a text line, as textline renders it,
    followed by a space or the line's end; and the value itself in any line when every layout
    writes it as it is (the cheaper test, first)."""

    def __init__(self, fields: list[tuple[tuple[str, ...], str | None]]) -> None:
        self.text: list[list[tuple[bytes, bytes]]] = []  # one field of each list: spaced, bare
        self.plain: list[bytes] = []
        for keys, value in fields:
            if value is None:
                continue
            rendered = [render_field(key, value).encode() for key in keys]
            self.text.append([(field + b" ", field) for field in rendered])
            if PLAIN.fullmatch(value):
                self.plain.append(value.encode())

    def held_by(self, raw: bytes) -> bool:
        for value in self.plain:
            if value not in raw:
                return False
        if raw[:1] != b"{":
            for alternatives in self.text:
                for spaced, bare in alternatives:
                    if spaced in raw or raw.endswith(bare):
                        break
                else:
                    return False
        return True

    def __bool__(self) -> bool:
        return bool(self.text)


class Prefilter:
    """The bytes a line of a request matching the filters must hold: its context, on every
    line (`holds_context`), and what only its terminal line holds (`holds_ending`)."""

    def __init__(self, filters: Filters) -> None:
        # Values every line of a matching request holds (its context) ...
        self.everywhere = Needles(
            [
                (("user_id", "username"), filters.user),
                (("ip",), filters.ip),
                (("trace_id",), filters.trace),
            ]
        )
        # A path prefix is looked for as bytes, in every layout, when they all write it as it is.
        path = filters.path
        self.prefix = path.encode() if path and PLAIN.fullmatch(path) else None
        # ... and those only its terminal line holds.
        code = filters.status if filters.status and filters.status.isdigit() else None
        self.terminal_only = Needles([(("route",), filters.route), (("status",), code)])
        # The messages worth parsing, when the filters leave only some (None: any). A request
        # in flight has no status and no slow warning, and a 5xx always ends "failed"; the
        # slow warning itself is always read, then the terminal line before it (`Scan.pending`).
        self.messages: tuple[bytes, ...] | None = None
        if filters.slow:
            self.messages = ()
        elif filters.errors or (filters.status or "").startswith("5"):
            self.messages = (_FAILED,)
        elif filters.status is not None:
            self.messages = _TERMINAL

    def holds_context(self, raw: bytes) -> bool:
        """Whether a line holds the context every line of a matching request holds."""
        if self.everywhere and not self.everywhere.held_by(raw):
            return False
        return self.prefix is None or self.prefix in raw

    def holds_ending(self, raw: bytes) -> bool:
        """Whether a line can be the terminal line of a matching request."""
        if self.messages is not None:
            for message in self.messages:
                if message in raw:
                    break
            else:
                return False
        return not self.terminal_only or self.terminal_only.held_by(raw)
