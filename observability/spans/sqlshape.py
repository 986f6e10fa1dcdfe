"""A query's shape: its SQL with every literal a placeholder, read by sqlparse's tokenizer.

    shape("SELECT * FROM t WHERE a = 'x''y' AND id IN (1, 2, 3) -- note")
    == "SELECT * FROM t WHERE a = ? AND id IN (?...)"

Strings (quoted, doubled quotes, `E'…'`, dollar-quoted), numbers and placeholders (`%s`,
`?`, `:name`) become `?`; comments are dropped; whitespace is one space; a list of
placeholders (`IN (…)`, `VALUES (…)`) is `(?...)` whatever its length, so one ORM query
has one shape. Quoted identifiers (`"billing_plan"`) stay. Anything the tokenizer cannot
read (a quote left open) ends the shape with `?` from its first literal on. Django keeps
parameters out of its SQL already; the shape is for raw SQL, where literals are inline,
and for grouping. `shown()` is the shape as records write it: masked, then capped.
"""

from __future__ import annotations

import functools

from sqlparse import lexer
from sqlparse import tokens as T

from observability.masking.redaction import get_redactor

PLACEHOLDER = "?"
LIST = "(?...)"
#: A shape longer than this is cut when written: a generated query can be megabytes.
SHAPE_LIMIT = 2000


def _is_literal(ttype: object) -> bool:
    """A value to hide: strings, numbers, dollar-quoted bodies, placeholders."""
    if ttype in T.String.Symbol:  # a "quoted identifier", not a value
        return False
    return ttype in T.Literal or ttype in T.Name.Placeholder


@functools.lru_cache(maxsize=1024)
def shape(sql: str) -> str:
    """The SQL with literals as `?`, comments gone, lists collapsed, capped."""
    parts: list[str] = []
    first_literal = -1
    for ttype, value in lexer.tokenize(sql):  # type: ignore[no-untyped-call]
        if ttype in T.Error:
            # A quote left open: the rest may be its value, and what came before may be
            # misread too (sqlparse takes \' as an escaped quote in every string, so in
            # standard SQL 'C:\', 'pw' reads as one string, pw, and an open quote).
            if first_literal >= 0:
                del parts[first_literal:]
            parts.append(PLACEHOLDER)
            break
        if ttype in T.Comment:
            continue
        if ttype in T.Whitespace or ttype in T.Newline:
            if parts and parts[-1] != " ":
                parts.append(" ")
            continue
        if _is_literal(ttype):
            if parts and parts[-1] in ("E", "e", "N", "n", "B", "b", "X", "x"):
                parts.pop()  # E'…', N'…', B'…', X'…': the prefix goes with its string
            if first_literal < 0:
                first_literal = len(parts)
            parts.append(PLACEHOLDER)
            continue
        parts.append(value)
    return _collapse_lists("".join(parts).strip())


def shown(sql: str) -> str:
    """The shape as written: masked by the redaction policy, then capped (mask, then cut)."""
    return get_redactor().text(shape(sql), SHAPE_LIMIT)


def _collapse_lists(text: str) -> str:
    """`(?, ?, ?)` (any count, any spacing) -> `(?...)`."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == "(":
            j = i + 1
            seen = False
            while j < n and text[j] in "?, ":
                seen = seen or text[j] == "?"
                j += 1
            if seen and j < n and text[j] == ")" and _only_placeholders(text[i + 1 : j]):
                out.append(LIST)
                i = j + 1
                continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _only_placeholders(inner: str) -> bool:
    return all(item.strip() == PLACEHOLDER for item in inner.split(","))
