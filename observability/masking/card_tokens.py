"""The card engine's tokens: how it reads the digits, escapes and separators of a run.

A digit is any Unicode digit, raw or as a backslash escape (`\\uff14`); a separator is
anything that is neither a letter nor a digit, a blank-rendering letter, or an escape of
one. Skeleton translations (C-speed) answer the first questions about plain text before
any pattern runs; `observability.masking.cards` says why the patterns stay linear.
"""

from __future__ import annotations

import re
import string

# Digits that are not decimal (so not in \d) but have a digit value: superscripts,
# subscripts, circled digits. str.isdigit() and not str.isdecimal() in Unicode 14
# (Python 3.11); test_other_digits_are_exactly_the_non_decimal_digits keeps it in step.
_OTHER_DIGITS = (
    "\u00b2\u00b3\u00b9\u1369-\u1371\u19da\u2070\u2074-\u2079\u2080-\u2089\u2460-\u2468"
    "\u2474-\u247c\u2488-\u2490\u24ea\u24f5-\u24fd\u24ff\u2776-\u277e\u2780-\u2788"
    "\u278a-\u2792\U00010a40-\U00010a43\U00010e60-\U00010e68\U00011052-\U0001105a"
    "\U0001f100-\U0001f10a"
)
_DIGITS = rf"\d{_OTHER_DIGITS}"
# Letters that render as nothing (Unicode's Default_Ignorable_Code_Point letters: the Hangul
# fillers). A reader sees a gap, not a letter, so they separate digits like a space does;
# test_blank_letters_are_exactly_the_default_ignorable_letters keeps the list complete.
BLANK_LETTERS = "\u115f\u1160\u3164\uffa0"
_HEX = "[0-9A-Fa-f]"
# What follows the backslash of \xNN, \uXXXX, \UXXXXXXXX (a code point <= U+10FFFF).
_ESCAPE_TAIL = rf"x{_HEX}{{2}}|u{_HEX}{{4}}|U(?:000{_HEX}|0010){_HEX}{{4}}"
_ESCAPE_SOURCE = rf"\\(?:{_ESCAPE_TAIL})"
# A token that may be a digit: a digit, or an escape (decoded later: digit, separator or letter).
_DIGIT_TOKEN = rf"(?:[{_DIGITS}]|{_ESCAPE_SOURCE})"
# A separator token: not a letter or digit, `_`, an escaped \n \t \r, a backslash of no escape.
_SEPARATOR_TOKEN = rf"(?:[^\w\\]|[_{BLANK_LETTERS}]|\\[ntr]|\\(?!{_ESCAPE_TAIL}))"
_SEPARATORS = (  # plain runs in one step
    rf"(?:[^\w\\]++|[_{BLANK_LETTERS}]|\\[ntr]|\\(?!{_ESCAPE_TAIL}))*+"
)

# At least 13 digit tokens with separators between (group 1): the only places a card can
# be. Attempts start only after a letter (or at the start): one per run, not one per digit.
_CANDIDATE = re.compile(
    rf"(?<![\W\d_{_OTHER_DIGITS}{BLANK_LETTERS}]){_SEPARATORS}"
    rf"({_DIGIT_TOKEN}(?:{_SEPARATORS}{_DIGIT_TOKEN}){{12,}}+)"
)
# ASCII text without a backslash (most log text) is scanned as a skeleton of the same
# length, digit -> d, letter -> space, anything else -> '.', with plain-character
# patterns: translating is C-speed and the patterns ~20x faster than the token one.
_SKELETON = str.maketrans(
    dict.fromkeys(map(chr, range(128)), ".")
    | dict.fromkeys("0123456789", "d")
    | dict.fromkeys(string.ascii_letters, " ")
)
_SKELETON_CANDIDATE = re.compile(r"(?<![d.])\.*+(d(?:\.*+d){12,}+)")
# The first question, for any text: are there 13 digits with no letter between them at
# all? Asked of a compact skeleton (separators dropped) where 13 d's in a row are the
# answer. It may say yes wrongly, never no wrongly: non-ASCII digits become 0 first and
# other non-ASCII characters are dropped (read as separators); in text with a backslash,
# the letters of an escape (x u U n t r a-f) are dropped too, so an escape counts as the
# digits of its payload (each digit's escape has one: test_every_digit_escape_has_a_digit).
_COMPACT_SKELETON = str.maketrans(
    dict.fromkeys(map(chr, range(128)))
    | dict.fromkeys("0123456789", "d")
    | dict.fromkeys(string.ascii_letters, " ")
)
_COMPACT_SKELETON_WITH_ESCAPES = str.maketrans(
    dict.fromkeys(map(chr, range(128)))
    | dict.fromkeys("0123456789", "d")
    | dict.fromkeys(set(string.ascii_letters) - set("abcdefABCDEFxuUntr"), " ")
)
_THIRTEEN_DIGITS = "d" * 13
_ASCII_DIGITS_ONLY = str.maketrans(dict.fromkeys(set(map(chr, range(128))) - set(string.digits)))
_ESCAPE = re.compile(_ESCAPE_SOURCE)
_ESCAPE_SPLIT = re.compile(f"({_ESCAPE_SOURCE})")
_DIGIT = re.compile(f"[{_DIGITS}]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _matched(pattern: re.Pattern[str], text: str, pos: int = 0, endpos: int = -1) -> re.Match[str]:
    """The match of a pattern that also matches the empty string: it always matches."""
    match = pattern.match(text, pos) if endpos < 0 else pattern.match(text, pos, endpos)
    if match is None:  # pragma: no cover - every caller's pattern matches the empty string
        msg = f"{pattern.pattern!r} did not match at {pos}"
        raise AssertionError(msg)
    return match
