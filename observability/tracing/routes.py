"""A URL pattern as a person reads it: `re_path` regexes shown like `path()` routes.

Django's `ResolverMatch.route` is the matched patterns joined: `path()` parts are already
readable (`api/v1/payments/<int:pk>/`), `re_path()` parts are regexes
(`ops/requests/(?P<request_id>[A-Za-z0-9._:-]{1,128})/$`). `readable_route()` turns the
regex parts into `ops/requests/<request_id>/`: a named group becomes `<name>`, any
other group or character class `<var>`, anchors and quantifiers go, escaped characters
stand for themselves. Routes come from the URLconf, never from a client, and each is
converted once (the result is remembered, a URLconf has few patterns).
"""

from __future__ import annotations

#: Characters that appear in a regex route but never in a path() route.
_REGEX_MARKS = frozenset("^$()[]\\{}|*+?")
_CLASS_ESCAPES = frozenset("dDwWsS")  # \d, \w, \s ...: a value, like a group
_ZERO_WIDTH_ESCAPES = frozenset("AZbBz")  # \A, \Z, \b ...: match no character
_QUANTIFIERS = frozenset("*+?")
UNNAMED = "<var>"
_CACHE_LIMIT = 4096

_readable: dict[str, str] = {}


def readable_route(route: str) -> str:
    """The route with its regex parts written as `<name>` placeholders (remembered)."""
    found = _readable.get(route)
    if found is not None:
        return found
    readable = _simplify(route) if _REGEX_MARKS.intersection(route) else route
    if len(_readable) < _CACHE_LIMIT:
        _readable[route] = readable
    return readable


def _simplify(pattern: str) -> str:
    out: list[str] = []
    i, end = 0, len(pattern)
    while i < end:
        char = pattern[i]
        if char == "\\":
            escaped = pattern[i + 1 : i + 2]
            if escaped in _CLASS_ESCAPES:
                out.append(UNNAMED)
            elif escaped and escaped not in _ZERO_WIDTH_ESCAPES:
                out.append(escaped)
            i = _after_quantifier(pattern, i + 2)
        elif char == "(":
            close = _group_end(pattern, i)
            inner = pattern[i + 1 : close]
            if inner.startswith("?P<") and ">" in inner:
                out.append(f"<{inner[3 : inner.index('>')]}>")
            elif inner.startswith("?:"):
                out.append(_simplify(inner[2:]))
            elif not inner.startswith("?"):  # (?=...), (?i), (?#...): nothing to show
                out.append(UNNAMED)
            i = _after_quantifier(pattern, close + 1)
        elif char == "[":
            out.append(UNNAMED)
            i = _after_quantifier(pattern, _class_end(pattern, i) + 1)
        elif char in "^$" or char in _QUANTIFIERS:
            i += 1
        elif char == "{":
            i = _after_quantifier(pattern, i)
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _after_quantifier(pattern: str, i: int) -> int:
    """The index past a quantifier (`*`, `+`, `?`, `{m,n}`, lazy or not) starting at i."""
    if i < len(pattern) and pattern[i] in _QUANTIFIERS:
        i += 1
    elif i < len(pattern) and pattern[i] == "{":
        close = pattern.find("}", i)
        if close != -1 and all(c.isdigit() or c == "," for c in pattern[i + 1 : close]):
            i = close + 1
    if i < len(pattern) and pattern[i] in "?+":  # lazy or possessive
        i += 1
    return i


def _class_end(pattern: str, start: int) -> int:
    """The index of the `]` closing the character class opened at `start` (or the end)."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":  # a leading ] is a literal
        i += 1
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "]":
            return i
        i += 1
    return len(pattern) - 1


def _group_end(pattern: str, start: int) -> int:
    """The index of the `)` closing the group opened at `start` (or the end)."""
    depth, i = 0, start
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = _class_end(pattern, i) + 1
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(pattern) - 1
