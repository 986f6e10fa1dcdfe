"""Where our own code called from: the first frame that is not a library's, Python's or ours.

A repeated query's site is the line of the view (or service) whose loop issued it, not
Django's ORM or the layer's wrapper. "Not ours" is a file under the standard library, an
installed package (site-packages), Django, or this package.
"""

from __future__ import annotations

import os
import sys
import sysconfig

import django


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.add(os.path.dirname(django.__file__))
    roots.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # observability/
    return tuple(sorted(os.path.join(os.path.realpath(root), "") for root in roots))


_ROOTS = _library_roots()
_theirs: dict[str, bool] = {}


def _is_theirs(filename: str) -> bool:
    known = _theirs.get(filename)
    if known is None:
        known = filename.startswith("<") or os.path.realpath(filename).startswith(_ROOTS)
        if len(_theirs) < 4096:
            _theirs[filename] = known
    return known


def _shown(filename: str) -> str:
    """The file relative to the working directory when it is under it."""
    relative = os.path.relpath(filename)
    return filename if relative.startswith("..") else relative


def our_call_site() -> tuple[str, str]:
    """`("billing/views.py:42", "payment_list")`, or ("-", "-") when none is ours."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not _is_theirs(filename):
            return f"{_shown(filename)}:{frame.f_lineno}", frame.f_code.co_name
        frame = frame.f_back  # type: ignore[assignment]
    return "-", "-"
