"""The API's JSON parser: DRF's, with a nesting limit so deep input is a 400, never a 500."""

from __future__ import annotations

import io
import re
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_DEPTH = 32
# A JSON string (skipped whole, escapes included) or one bracket: linear, no backtracking
# beyond the string being read.
_STRUCTURE = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[{]|[\]}]')


def nesting_depth(data: bytes, limit: int = MAX_DEPTH) -> int:
    """The deepest nesting of arrays and objects in `data`, counted up to `limit` + 1."""
    depth = deepest = 0
    for match in _STRUCTURE.finditer(data):
        char = match.group()[:1]
        if char in b"[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif char in b"]}":
            depth -= 1
    return deepest


class JSONParser(parsers.JSONParser):
    """JSON bodies nested deeper than MAX_DEPTH are refused with a 400 before parsing."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = stream.read() if stream is not None else b""
        if nesting_depth(data) > MAX_DEPTH:
            msg = f"JSON parse error - nested deeper than {MAX_DEPTH} levels."
            raise ParseError(msg)
        try:
            return super().parse(io.BytesIO(data), media_type, parser_context)
        except RecursionError:
            msg = "JSON parse error - nested too deeply."
            raise ParseError(msg) from None
