"""The requests that match some filters, newest first, read from the end of the requests file.

`search()` reads the requests file and its backups backwards from the newest line and stops
as soon as the page is certain, so the last 50 requests come back in milliseconds however
large the logs are; `list_requests()` is the same scan for `logtrace` (the newest matches,
oldest first). The requests are put together from their ends (`scan`).

Most lines are never parsed: only those whose bytes can matter (`prefilter`). Once the page
is full, a line written before the page's oldest request started is passed over after
reading its time.

A `Budget` bounds the work of one search whatever the filters and the page: the lines read
and the lines parsed. When it runs out first, the page is `partial`: it holds the requests
known whole (those that started after `resume`, a few seconds after the oldest line read),
and the search goes on from there with `before=resume`: only requests started at or before
it, read from where the files reach that time (found by bisection, `files.seek_after`, a
margin later), so none of the lines already read is read again. Continuing never shows a
request twice nor skips one (a request that started before the point and ran more than
SEEK_MARGIN past it is listed from its started line, without its end).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from observability.logtrace.files import newest_first
from observability.logtrace.hosts import RecordKeys, newest_first_everywhere
from observability.logtrace.query import EMPTY, Filters
from observability.logtrace.records import (
    REQUESTS,
    line_time,
    parse_line,
    quick_time,
    raw_line_time,
)
from observability.logtrace.scan import SLACK, Scan
from observability.logtrace.summary import Summary

# Going on from `before`, the scan starts this much later: the ends of requests that started
# before it (one longer than this that started right before `before` is listed by its start).
SEEK_MARGIN = SLACK + timedelta(seconds=5)


@dataclass(frozen=True)
class Budget:
    """The most work one search does: lines read (a microsecond or so each) and lines parsed
    (their time or the whole line: tens of microseconds each)."""

    lines: int = 100_000
    parsed: int = 5_000


@dataclass
class Page:
    requests: list[Summary]  # newest first
    has_more: bool
    partial: bool = False  # the budget ran out before the page was certain
    resume: datetime | None = None  # partial: go on with search(before=resume); None: cannot
    lines_read: int = 0
    lines_parsed: int = 0


def search(
    directory: Path,
    filters: Filters,
    *,
    offset: int = 0,
    limit: int = 50,
    budget: Budget | None = None,
    before: datetime | None = None,
) -> Page:
    """The requests matching `filters`, newest first, `limit` of them from `offset` on.

    `budget`: stop there and return a partial page (None: read as far as the page needs).
    `before`: go on from a partial page's `resume` (requests that started at or before it).
    """
    if before is not None:
        until = before if filters.until is None else min(filters.until, before)
        filters = replace(filters, until=until)
    scan = Scan(filters, need=offset + limit + 1)
    after = None if before is None else before + SEEK_MARGIN
    lines = newest_first_everywhere(
        directory,
        REQUESTS,
        after=after,
        line_time=raw_line_time,
        read=newest_first,
        host=filters.host,
    )
    if budget is not None:
        lines = itertools.islice(lines, budget.lines)
    read = parsed = 0
    raw = b""
    stopped = False  # by the scan itself: nothing further back can matter
    keys = RecordKeys()  # a line delivered twice to a central root is read once
    for tag, raw, host in lines:
        read += 1
        if budget is not None and parsed >= budget.parsed:
            break
        if not scan.wanted(raw):
            continue
        if scan.full and not scan.pending_in(raw):
            when = quick_time(raw)  # a line of ours: its first bytes tell its time
            if when is None:
                parsed += 1
                when = line_time(raw.decode("utf-8", errors="replace"))
            if when is None:
                continue
            scan.seen(when)
            if when < scan.oldest:  # no request it belongs to started late enough for the page
                if scan.done(when):
                    stopped = True
                    break
                continue
        parsed += 1
        record = parse_line(raw.decode("utf-8", errors="replace"), tag)
        if record is None or record.request_id in ("", EMPTY):
            continue
        record.host = host
        if host and not keys.first_time(record):
            continue
        scan.seen(record.time)
        if not scan.feed(record):
            stopped = True
            break
    found = scan.result()
    exhausted = budget is not None and (read >= budget.lines or parsed >= budget.parsed)
    if stopped or not exhausted:
        return Page(
            found[offset : offset + limit], len(found) > offset + limit, False, None, read, parsed
        )
    page = Page([], False, True, None, read, parsed)
    return _partial(page, scan, found, raw, offset, limit, before)


def _partial(
    page: Page,
    scan: Scan,
    found: list[Summary],
    oldest_read: bytes,
    offset: int,
    limit: int,
    before: datetime | None,
) -> Page:
    """The page of a scan the budget stopped: the requests known whole, and where to go on.

    Every line before the last one read was written at most SLACK after it, so a request
    that started more than SLACK after that line has every line read: it is shown. Those
    that started earlier are left to the search that goes on with `before=resume`.
    """
    when = raw_line_time(oldest_read) or scan.last_time
    if when is None:  # nothing read could be dated: nothing is known whole
        return page
    resume = when + SLACK
    resume = resume.replace(microsecond=resume.microsecond // 1000 * 1000)  # as `until` reads
    until = scan.filters.until
    if until is not None and resume >= until:
        if before is not None:
            # the budget ran out before the lines up to `before` were reached: going on
            # from the same place would read the same lines (the filters must narrow)
            return page
        resume = until  # the lines after `until` were read: go on from it, by seeking
    known = [summary for summary in found if summary.first > resume]
    page.requests = known[offset : offset + limit]
    page.has_more = len(known) > offset + limit
    page.resume = resume
    return page


def list_requests(directory: Path, filters: Filters, limit: int) -> list[Summary]:
    """The newest `limit` requests matching `filters`, oldest first (as `logtrace` prints them)."""
    return search(directory, filters, limit=limit).requests[::-1]
