"""A query's shape on a corpus of SQL: every literal hidden, whatever its quoting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from observability.spans.sqlshape import SHAPE_LIMIT, shape, shown

CORPUS = [
    # (sql, its shape, texts that must be gone)
    ("SELECT * FROM t WHERE a = 'x'", "SELECT * FROM t WHERE a = ?", ["'x'"]),
    ("SELECT * FROM t WHERE a = 'it''s 4111'", "SELECT * FROM t WHERE a = ?", ["4111", "it"]),
    ("SELECT E'it\\'s hunter2' FROM t", "SELECT ? FROM t", ["hunter2", "it"]),
    # E'x\\' is x and a backslash; sqlparse reads \' as an escape: the shape is cut, safely
    ("SELECT e'x\\\\' , N'nat'", "SELECT ?", ["nat"]),
    ("SELECT N'nat', B'101', X'ff'", "SELECT ?, ?, ?", ["nat", "101", "ff"]),
    # a standard string ending in a backslash: sqlparse reads \' as an escape, so it cuts
    ("SELECT 'C:\\', 'hunter2' FROM t", "SELECT ?", ["hunter2"]),
    ("SELECT $$ pw hunter2 $$", "SELECT ?", ["hunter2"]),
    ("SELECT $tag$ a 'b' $tag$ FROM t", "SELECT ? FROM t", ["tag", "'b'"]),
    ("SELECT 1 -- card 4111111111111111\nFROM t", "SELECT ? FROM t", ["4111", "card"]),
    ("SELECT /* secret s3cr3t */ a FROM t", "SELECT a FROM t", ["s3cr3t"]),
    ("SELECT a FROM t WHERE x = -1.5e3 AND y = 42", "SELECT a FROM t WHERE x = ? AND y = ?", []),
    ("SELECT a FROM t WHERE id IN (1, 2, 3, 4, 5)", "SELECT a FROM t WHERE id IN (?...)", []),
    ("SELECT a FROM t WHERE id IN (%s, %s, %s)", "SELECT a FROM t WHERE id IN (?...)", ["%s"]),
    ("INSERT INTO u (p) VALUES ('hunter2', 7)", "INSERT INTO u (p) VALUES (?...)", ["hunter2"]),
    (
        'SELECT "billing_plan"."code" FROM "billing_plan" LIMIT 21',
        'SELECT "billing_plan"."code" FROM "billing_plan" LIMIT ?',
        [],
    ),
    ("SELECT a\n\n   FROM\tt", "SELECT a FROM t", []),
    ("SELECT a FROM t WHERE b = 'unterminated 4111 1111", "SELECT a FROM t WHERE b = ?", ["4111"]),
]


@pytest.mark.parametrize(("sql", "expected", "gone"), CORPUS)
def test_corpus(sql, expected, gone):
    result = shape(sql)
    assert result == expected
    for text in gone:
        assert text not in result


def test_one_orm_query_has_one_shape_whatever_its_list_length():
    assert shape("SELECT a FROM t WHERE id IN (%s)") == shape(
        "SELECT a FROM t WHERE id IN (%s, %s, %s, %s)"
    )


def test_a_long_query_is_masked_then_capped():
    columns = ", ".join(f"c{i}" for i in range(SHAPE_LIMIT // 5))
    for offset in range(12):  # a card number in an identifier, around the cut
        sql = f'SELECT {"x" * (SHAPE_LIMIT - 7 - 12 - offset)}, "t4111111111111111", {columns}'
        written = shown(sql)
        assert "4111111111111111"[:8] not in written
        assert len(written) <= SHAPE_LIMIT + 40


@given(st.text(alphabet="0123456789 -", min_size=1, max_size=30))
def test_no_quoted_literal_survives(value):
    for quoted in (f"'{value}'", f"E'{value}'", f"$${value}$$", f"$q${value}$q$"):
        result = shape(f"SELECT a FROM t WHERE b = {quoted} AND c = 1")
        assert result == "SELECT a FROM t WHERE b = ? AND c = ?"
