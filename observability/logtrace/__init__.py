"""Read the log files back: one request's story from every file, or the requests that match.

    from observability.logtrace import Filters, trace, list_requests

`manage.py logtrace` and the staff trace viewer both read the files through these names.
"""

from observability.logtrace.files import lines_containing, log_files
from observability.logtrace.follow import follow_files
from observability.logtrace.records import Record, parse_line
from observability.logtrace.requests import (
    LEVELS,
    Filters,
    Summary,
    list_requests,
    parse_when,
    split_by_request,
    summarise,
    trace,
)

__all__ = [
    "LEVELS",
    "Filters",
    "Record",
    "Summary",
    "follow_files",
    "lines_containing",
    "list_requests",
    "log_files",
    "parse_line",
    "parse_when",
    "split_by_request",
    "summarise",
    "trace",
]
