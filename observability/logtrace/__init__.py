"""Read the log files back: one request's story from every file, or the requests that match.

    from observability.logtrace import Filters, search, story

`manage.py logtrace` and the staff trace viewer both read the files through these names:

- `files`: which files exist (names from `OBSERVABILITY['LOG_FILES']`, rotated and gzipped
  backups too), their lines oldest first, newest first, or those holding a needle;
- `records`: a text, JSON or ECS line as a `Record`;
- `query`: the `Filters`, named like `logtrace`'s options;
- `summary`: one request as its records tell it (`Summary`, `summarise`);
- `requests`: one request ID's story (`trace`, `story`), split into the requests that shared it
  (`splitting`: `split_by_request`);
- `listing`: the requests that match, newest first, read from the end (`search`, `list_requests`),
  each line's bytes tested first (`prefilter`), the requests put together by a `scan`;
- `follow`: new records as they are written;
- `waterfall`: a request's spans, queries and calls as bars, and where its time went.
"""

from observability.logtrace.files import file_tags, lines_containing, log_files, newest_first
from observability.logtrace.follow import follow_files
from observability.logtrace.listing import Page, list_requests, search
from observability.logtrace.query import LEVELS, Filters, parse_when
from observability.logtrace.records import REQUESTS, Record, parse_line
from observability.logtrace.requests import Story, story, trace
from observability.logtrace.splitting import split_by_request
from observability.logtrace.summary import Summary, summarise

__all__ = [
    "LEVELS",
    "REQUESTS",
    "Filters",
    "Page",
    "Record",
    "Story",
    "Summary",
    "file_tags",
    "follow_files",
    "lines_containing",
    "list_requests",
    "log_files",
    "newest_first",
    "parse_line",
    "parse_when",
    "search",
    "split_by_request",
    "story",
    "summarise",
    "trace",
]
