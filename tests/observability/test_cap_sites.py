"""Mask first, then cut (THREATS.md invariant 2): every place that shortens text is known.

The syntax tree of `observability/` and `billing/` is walked for every construct that can
shorten a text: slices (`x[:N]`, `x[a:b]`, `x[-N:]`), calls of `cap`, `_cap`, `Truncator`,
`textwrap.shorten`/`wrap`/`fill`, `ljust`/`rjust`/`center`, `islice`, calls that take a
length limit (`escape(x, LIMIT)`, `redactor.text(x, LIMIT)`), `%.Ns` formats and f-string
precisions (`{x:.10}`); templates are searched for `truncatechars`, `truncatewords` and
`slice`. Each site found must be in ALLOWLIST with its reason, and each entry of ALLOWLIST
must still exist: a new cap site fails this suite until someone says why it is safe.

A site is one of:
- NOT_CLIENT: the text is not a client's (our IDs, timestamps, settings, lists, bytes
  of our own files) or is not text at all;
- MASKED: client text, masked before the cut (each such site has a driver below that
  sends card numbers at every offset around its cut and reads what was written);
- ENGINE: the masking engine's own pieces (observability/masking/redaction.py), proved by
  tests/observability/test_redaction.py.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter
from pathlib import Path

import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("observability", "billing")

CARD = "4111111111111111"


# ---------------------------------------------------------------------------- finding the sites

_CALLS = frozenset(
    {
        "cap",
        "_cap",
        "Truncator",
        "ljust",
        "rjust",
        "center",
        "truncate",
        "islice",
        "truncatechars",
        "truncatewords",
    }
)
# textwrap's, called as textwrap.<name> or by its bare name (not a method of our own).
_TEXTWRAP = frozenset({"shorten", "wrap", "fill"})
# Calls whose second argument (or `limit=`) is a length the result is capped to.
_LIMITED_CALLS = frozenset({"escape", "escape_bar", "text", "url", "query_string"})
_PERCENT_PRECISION = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*\.\d+[sra]")
_FORMAT_PRECISION = re.compile(r"\{[^{}]*:[^{}]*\.\d+[^{}]*\}")
_TEMPLATE_CUTS = re.compile(r"\|\s*(truncatechars|truncatewords|truncatechars_html|slice)\b")


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _site_kind(node: ast.AST) -> str | None:
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        return "slice"
    if isinstance(node, ast.Call):
        name = _call_name(node)
        if name in _CALLS:
            return "call"
        if name in _TEXTWRAP and (
            isinstance(node.func, ast.Name)
            or (isinstance(node.func.value, ast.Name) and node.func.value.id == "textwrap")
        ):
            return "call"
        if name in _LIMITED_CALLS and (
            len(node.args) >= 2 or any(keyword.arg == "limit" for keyword in node.keywords)
        ):
            return "limit"
        if name == "format" and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if (
                isinstance(target, ast.Constant)
                and isinstance(target.value, str)
                and _FORMAT_PRECISION.search(target.value)
            ):
                return "format"
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _PERCENT_PRECISION.search(node.value)
    ):
        return "percent"
    if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
        spec = ast.unparse(node.format_spec)
        if re.search(r"\.\d+", spec):
            return "precision"
    return None


def find_sites() -> Counter[str]:
    """Every cap site as `path::function::source`, counted (one function may hold twins)."""
    found: Counter[str] = Counter()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
            _walk(tree, "", relative, found)
        for path in sorted((ROOT / package).rglob("*.html")):
            relative = path.relative_to(ROOT).as_posix()
            for line in path.read_text(encoding="utf-8").splitlines():
                for match in _TEMPLATE_CUTS.finditer(line):
                    start = line.rfind("{{", 0, match.start())
                    end = line.find("}}", match.end())
                    found[f"{relative}::template::{line[start : end + 2]}"] += 1
    return found


def _walk(node: ast.AST, qualname: str, path: str, found: Counter[str]) -> None:
    for child in ast.iter_child_nodes(node):
        name = qualname
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{qualname}.{child.name}" if qualname else child.name
        kind = _site_kind(child)
        if kind is not None:
            source = " ".join(ast.unparse(child).split())
            found[f"{path}::{name or '<module>'}::{source}"] += 1
        _walk(child, name, path, found)


# ---------------------------------------------------------------------------- the allowlist

NOT_CLIENT, NOT_WRITTEN, MASKED, ENGINE = "not client text", "not written", "masked", "engine"

ALLOWLIST: dict[str, tuple[str, str]] = {
    "observability/logtrace/tasks.py::TaskSummary.line::f'task {self.task_id} {self.name}: {self.outcome} (attempts: {self.attempts}) {self.first.time:%H:%M:%S.%f}'[:-3]": (
        NOT_CLIENT,
        "the microseconds of a time cut to milliseconds (the line's values were masked when written)",
    ),
    "observability/logtrace/tasks.py::TaskSummary.line::f' -> {self.last.time:%H:%M:%S.%f}'[:-3]": (
        NOT_CLIENT,
        "the microseconds of a time cut to milliseconds",
    ),
    "observability/background/tasks.py::log_published::get_redactor().text(task_name, 200)": (
        MASKED,
        "Redactor masks the whole value, then caps it",
    ),
    "observability/viewer/timeline.py::Mark.lane::_LANE_UNSAFE.sub('', str(task_id))[:8]": (
        NOT_CLIENT,
        "a lane name: at most 8 characters of a task ID, where no card number fits",
    ),
    "billing/webhooks/delivery.py::error_text::get_redactor().text(f'{prefix}{exc}', ERROR_LIMIT)": (
        MASKED,
        "Redactor masks the whole value, then caps it",
    ),
    "billing/webhooks/sweep.py::overdue::WebhookOutbox.objects.filter(status=WebhookOutbox.Status.PENDING, next_attempt_at__lte=timezone.now() - grace).select_related('event').order_by('next_attempt_at')[:limit]": (
        NOT_CLIENT,
        "a LIMIT on a query of outbox rows, not a text",
    ),
    "observability/background/tasks.py::TaskLines.failed::get_redactor().text(str(exc), 1000)": (
        MASKED,
        "Redactor masks the whole value, then caps it",
    ),
    "observability/background/tasks.py::TaskLines.retried::get_redactor().text(reason, 1000)": (
        MASKED,
        "Redactor masks the whole value, then caps it",
    ),
    "observability/background/tasks.py::TaskLines.retried::{delay:.3f}": (
        NOT_CLIENT,
        "a number formatted with three decimals",
    ),
    "observability/background/tasks.py::task_context::get_redactor().text(task_name, 200)": (
        MASKED,
        "Redactor masks the whole value, then caps it",
    ),
    "observability/background/tasks.py::task_context::get_redactor().text(username, USERNAME_LIMIT)": (
        MASKED,
        "Redactor masks the whole value (a header of at most 1024 characters), then caps it",
    ),
    "observability/ecs_formatter.py::_nest::parts[:-1]": (
        NOT_CLIENT,
        "the parents of a dotted ECS field name",
    ),
    "observability/json_formatter.py::JsonFormatter.render::escape(line.host, VALUE_LIMIT)": (
        NOT_CLIENT,
        "the host name from the settings",
    ),
    "observability/lines/line.py::_new_prefix::raw[1:5]": (
        NOT_CLIENT,
        "random bytes for a record identity's prefix",
    ),
    **{
        f"observability/tracing/routes.py::{site}": (
            NOT_CLIENT,
            "a URL pattern of the project's URLconf, made readable for a metrics label",
        )
        for site in (
            "_after_quantifier::pattern[i + 1:close]",
            "_simplify::inner[2:]",
            "_simplify::inner[3:inner.index('>')]",
            "_simplify::pattern[i + 1:close]",
            "_simplify::pattern[i + 1:i + 2]",
        )
    },
    "billing/throttling.py::_digest::hashlib.sha256(joined).hexdigest()[:32]": (
        NOT_CLIENT,
        "a hex digest, the throttle's cache key",
    ),
    "observability/logtrace/files.py::_holding::data[start:starts[start]]": (
        NOT_WRITTEN,
        "a line of a log file read back (what it holds was masked when written)",
    ),
    "observability/logtrace/files.py::_last_time::handle.read(PROBE).split(b'\\n')[1:-1]": (
        NOT_WRITTEN,
        "the whole lines of a block read to find a file's last time",
    ),
    "observability/logtrace/files.py::_last_time::lines[-PROBE_LINES:]": (
        NOT_WRITTEN,
        "the last lines of a file, read for their times",
    ),
    "observability/logtrace/files.py::_probe::data[offset:end]": (
        NOT_WRITTEN,
        "a block of a log file read back to find a time",
    ),
    "observability/logtrace/files.py::lines_backwards::data[:end]": (
        NOT_WRITTEN,
        "a gzipped backup's bytes up to its last line break",
    ),
    "observability/logtrace/files.py::lines_holding::data[:cut]": (
        NOT_WRITTEN,
        "a block of whole lines, searched",
    ),
    "observability/logtrace/files.py::lines_holding::data[cut:]": (
        NOT_WRITTEN,
        "the start of a line a block cut, kept for the next block",
    ),
    "observability/logtrace/listing.py::_partial::known[offset:offset + limit]": (
        NOT_CLIENT,
        "a page of the requests found",
    ),
    "observability/logtrace/listing.py::search::itertools.islice(lines, budget.lines)": (
        NOT_CLIENT,
        "the page's budget of lines read",
    ),
    **{
        f"observability/logtrace/records.py::quick_time::raw[{cut}]{twin}": (
            NOT_WRITTEN,
            "a line's timestamp digits, read back to compare times",
        )
        for cut, twin in (
            ("0:4", ""),
            ("10:11", ""),
            ("11:13", ""),
            ("14:16", ""),
            ("17:19", ""),
            ("19:20", ""),
            ("20:23", ""),
            ("23:24", ""),
            ("4:5", ""),
            ("5:7", ""),
            ("8:10", ""),
            (":1", ""),
        )
    },
    "observability/management/logtrace_output.py::Printer._record::f'[{escape(record.files):8}] {record.time:%Y-%m-%d %H:%M:%S,%f}'[:-3]": (
        NOT_CLIENT,
        "a time's microseconds cut to milliseconds (the end of the text is the time)",
    ),
    "observability/management/logtrace_output.py::_time::f'{when:%H:%M:%S.%f}'[:-3]": (
        NOT_CLIENT,
        "a time's microseconds cut to milliseconds",
    ),
    "observability/viewer/forms.py::no_unsafe_characters::found[:5]": (
        NOT_CLIENT,
        "the first five refused characters, named by their code points (U+202E)",
    ),
    "observability/viewer/views.py::_query::redactor.text(request.GET[name], QUERY_VALUE_LIMIT)": (
        MASKED,
        "a staff page's query for its audit event, masked whole by text() before its cap",
    ),
    "observability/viewer/views.py::request_detail::found.requests[low:low + OCCURRENCES_SHOWN]": (
        NOT_CLIENT,
        "the requests sharing an ID shown around the chosen one",
    ),
    "observability/viewer/views.py::request_detail::group[-RECORDS_SHOWN_LAST:]": (
        NOT_CLIENT,
        "the last records of a long story",
    ),
    "observability/viewer/views.py::request_detail::group[:first]": (
        NOT_CLIENT,
        "the first records of a long story",
    ),
    "billing/parsers.py::nesting_depth::match.group()[:1]": (
        NOT_WRITTEN,
        "one character of a JSON token, compared, never written",
    ),
    "observability/tracing/client_ip.py::_parse_ip::value[1:]": (
        NOT_WRITTEN,
        "what follows the [ of [v6]:port, parsed; only a validated IP is written",
    ),
    "observability/tracing/client_ip.py::_parse_ip::port[1:]": (
        NOT_WRITTEN,
        "the digits after the port's colon, checked as a port number, never written",
    ),
    "observability/tracing/client_ip.py::_elements::header[start + 1:end]": (
        NOT_WRITTEN,
        "one X-Forwarded-For element, read from the right, parsed; only a validated IP is written",
    ),
    "observability/decorators.py::_find_request::args[:2]": (
        NOT_CLIENT,
        "a tuple of a view's arguments",
    ),
    "observability/ecs_formatter.py::EcsFormatter.render::cap(line.message, MESSAGE_LIMIT)": (
        MASKED,
        "a record's message or field, masked whole by RedactionFilter before any formatter",
    ),
    "observability/ecs_formatter.py::_text::cap(json.dumps(value, default=str, ensure_ascii=False), VALUE_LIMIT)": (
        MASKED,
        "a record's message or field, masked whole by RedactionFilter before any formatter",
    ),
    "observability/ecs_formatter.py::_text::cap(str(value), VALUE_LIMIT)": (
        MASKED,
        "a record's message or field, masked whole by RedactionFilter before any formatter",
    ),
    "observability/ecs_formatter.py::_text::cap(value, VALUE_LIMIT)": (
        MASKED,
        "a record's message or field, masked whole by RedactionFilter before any formatter",
    ),
    "observability/masking/escaping.py::cap::text[:limit]": (
        MASKED,
        "the cap itself: every caller passes text masked by the layer",
    ),
    "observability/masking/escaping.py::escape::cap(text, limit)": (
        MASKED,
        "the cap itself: every caller passes text masked by the layer",
    ),
    "observability/masking/escaping.py::escape_bar::escape(text, limit)": (
        MASKED,
        "the cap itself: every caller passes text masked by the layer",
    ),
    "observability/masking/escaping.py::cap_traceback::cap(line, TRACEBACK_LINE_LIMIT)": (
        MASKED,
        "a traceback, masked whole by RedactionFilter (exc_text) before it is formatted",
    ),
    "observability/masking/escaping.py::cap_traceback::text[-TRACEBACK_LIMIT:]": (
        MASKED,
        "a traceback, masked whole by RedactionFilter (exc_text) before it is formatted",
    ),
    "observability/masking/escaping.py::read_plain_traceback::text[:-1]": (
        NOT_WRITTEN,
        "a JSON line's traceback read back: drops the line break plain_traceback ended it with",
    ),
    "observability/management/logtrace_cli.py::main::sys.argv[1:]": (
        NOT_CLIENT,
        "the command line's arguments without the program's name (a list, not a text)",
    ),
    "observability/events.py::log_performance_metric::{value:.3f}": (
        NOT_CLIENT,
        "a number formatted with three decimals",
    ),
    "observability/filters.py::_capped::cap(arg, ARG_LIMIT)": (
        MASKED,
        "each argument masked whole, and the message masked whole before any argument is cut",
    ),
    "observability/guard/flood_windows.py::WindowTable._close::key[:3]": (
        NOT_CLIENT,
        "a tuple key",
    ),
    "observability/guard/flood.py::FloodGuard.decide::key[:3]": (NOT_CLIENT, "a tuple key"),
    "observability/guard/flood_loggers.py::GuardedLoggers.kind::probe[:dot]": (
        NOT_CLIENT,
        "a logger name's parents, looked up in the guarded names",
    ),
    "observability/guard/flood_windows.py::WindowTable._example::get_redactor().text(message, ARG_LIMIT)": (
        MASKED,
        "the summarised record's message, masked whole by text() before its cap",
    ),
    "observability/logconfig.py::build_logging::filters[1:]": (
        NOT_CLIENT,
        "the list of filter names after the first",
    ),
    "billing/management/commands/payment_reconcile.py::Command.handle::selectors.payment_stale_list()[:limit]": (
        NOT_CLIENT,
        "a queryset limited to --limit rows",
    ),
    "observability/json_formatter.py::JsonFormatter.render::escape(line.message, MESSAGE_LIMIT)": (
        MASKED,
        "the message, masked whole by RedactionFilter or when the request was read",
    ),
    "observability/json_formatter.py::_json_value::escape(str(k), 64)": (
        MASKED,
        "a field's value or mapping key, masked by RedactionFilter (Redactor.value masks keys too)",
    ),
    "observability/json_formatter.py::_json_value::escape(str(value), VALUE_LIMIT)": (
        MASKED,
        "a field's value or mapping key, masked by RedactionFilter (Redactor.value masks keys too)",
    ),
    "observability/json_formatter.py::_json_value::escape(value, VALUE_LIMIT)": (
        MASKED,
        "a field's value or mapping key, masked by RedactionFilter (Redactor.value masks keys too)",
    ),
    "observability/json_formatter.py::iso_timestamp::datetime.fromtimestamp(second, tz=UTC).isoformat()[:19]": (
        NOT_CLIENT,
        "a timestamp",
    ),
    "observability/tracing/ids.py::_take::block[i:i + _ID_BYTES]": (
        NOT_CLIENT,
        "our own random bytes, cut into IDs",
    ),
    "observability/tracing/ids.py::new_ids::h[13:16]": (
        NOT_CLIENT,
        "our own random bytes, cut into IDs",
    ),
    "observability/tracing/ids.py::new_ids::h[17:20]": (
        NOT_CLIENT,
        "our own random bytes, cut into IDs",
    ),
    "observability/tracing/ids.py::new_ids::h[20:32]": (
        NOT_CLIENT,
        "our own random bytes, cut into IDs",
    ),
    "observability/tracing/ids.py::new_ids::h[32:64]": (
        NOT_CLIENT,
        "our own random bytes, cut into IDs",
    ),
    "observability/tracing/ids.py::new_ids::h[64:80]": (
        NOT_CLIENT,
        "our own random bytes, cut into IDs",
    ),
    "observability/tracing/ids.py::new_ids::h[8:12]": (
        NOT_CLIENT,
        "our own random bytes, cut into IDs",
    ),
    "observability/tracing/ids.py::new_ids::h[:8]": (
        NOT_CLIENT,
        "our own random bytes, cut into IDs",
    ),
    "observability/tracing/ids.py::new_span_id::_take()[32:40]": (
        NOT_CLIENT,
        "our own random bytes, cut into IDs",
    ),
    "observability/logtrace/files.py::_matches::data[start:end]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/files.py::lines_backwards::pieces[1:]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/files.py::lines_containing::data[:cut]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/files.py::lines_containing::data[cut:]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/files.py::log_files::path.name[len(name):]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/follow.py::follow_files::chunk[:complete]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/follow.py::follow_files::chunk[:complete].split(b'\\n')[:-1]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/prefilter.py::Needles.held_by::raw[:1]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/listing.py::list_requests::search(directory, filters, limit=limit).requests[::-1]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/listing.py::search::found[offset:offset + limit]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/query.py::Filters.status_ok::status[1:]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/query.py::Filters.status_ok::status[:1]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/records.py::_from_ecs::key[len(ecs.LABELS) + 1:]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/summary.py::Summary.status_class::self.status[:1]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/management/logtrace_output.py::Printer._record::record.raw[:len(record.raw) - len(tb) - 3]": (
        MASKED,
        "a line read back from our files, masked when written; only its traceback part is dropped",
    ),
    "observability/management/commands/test_logging.py::Command.handle::uuid.uuid4().hex[:12]": (
        NOT_CLIENT,
        "a fresh UUID",
    ),
    "observability/lines/messages.py::completed::{duration:.3f}": (
        NOT_CLIENT,
        "a duration formatted with three decimals",
    ),
    "observability/lines/messages.py::failed::{duration:.3f}": (
        NOT_CLIENT,
        "a duration formatted with three decimals",
    ),
    "observability/lines/messages.py::slow::{duration:.3f}": (
        NOT_CLIENT,
        "a duration formatted with three decimals",
    ),
    "observability/masking/redaction.py::NullRedactor.query_string::_cap(query, limit)": (
        ENGINE,
        "REDACT off: the operator's choice to write text as it is",
    ),
    "observability/masking/redaction.py::NullRedactor.text::_cap(text, limit)": (
        ENGINE,
        "REDACT off: the operator's choice to write text as it is",
    ),
    "observability/masking/redaction.py::NullRedactor.url::_cap(f'{path}?{query}' if query else path, limit)": (
        ENGINE,
        "REDACT off: the operator's choice to write text as it is",
    ),
    "observability/masking/keys.py::KeyPolicy._mask_pairs::text[last:]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/keys.py::KeyPolicy._mask_pairs::text[last:start]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/keys.py::KeyPolicy._mask_pairs::text[match.start(1):match.end(1)]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/keys.py::KeyPolicy._mask_pairs::text[start:end]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/redaction.py::Redactor._query::_cap(encoded if path is None else f'{self._mask(path)}?{encoded}', limit, dropped)": (
        ENGINE,
        "caps the masked query, or splits the parsed pairs",
    ),
    "observability/masking/redaction.py::Redactor._query::parts[1::2]": (
        ENGINE,
        "caps the masked query, or splits the parsed pairs",
    ),
    "observability/masking/redaction.py::Redactor._query::parts[::2]": (
        ENGINE,
        "caps the masked query, or splits the parsed pairs",
    ),
    "observability/masking/redaction.py::Redactor.text::_cap(self._mask(text), limit, 0)": (
        ENGINE,
        "caps what _mask() returned",
    ),
    "observability/masking/redaction.py::Redactor.text::_cap(self._mask(text), limit, dropped)": (
        ENGINE,
        "caps what _mask() returned",
    ),
    "observability/masking/redaction.py::Redactor.url::self.text(path, limit)": (
        ENGINE,
        "text() masks, then caps",
    ),
    "observability/masking/redaction.py::_cap::text[:limit]": (
        ENGINE,
        "the cap, called on masked text only",
    ),
    "observability/masking/cards.py::_card_spans::text[start:end]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/percent.py::_percent_card_spans::part[::-1]": (
        ENGINE,
        "reads a region reversed to find where it ends; nothing is dropped",
    ),
    "observability/masking/cut.py::cut::text[::-1]": (
        ENGINE,
        "cuts at MAX_SCAN and masks whole the digit run or JWT the cut touches",
    ),
    "observability/masking/cut.py::cut::text[:limit]": (
        ENGINE,
        "cuts at MAX_SCAN and masks whole the digit run or JWT the cut touches",
    ),
    "observability/masking/cut.py::cut::text[:end]": (
        ENGINE,
        "cuts at MAX_SCAN and masks whole the digit run or JWT the cut touches",
    ),
    "observability/masking/cut.py::cut::text[:first.start()]": (
        ENGINE,
        "cuts at MAX_SCAN and masks whole the digit run or JWT the cut touches",
    ),
    "observability/masking/cut.py::cut::text[:jwt]": (
        ENGINE,
        "cuts at MAX_SCAN and masks whole the digit run or JWT the cut touches",
    ),
    "observability/masking/cut.py::cut::text[end - 1::-1]": (
        ENGINE,
        "cuts at MAX_SCAN and masks whole the digit run or JWT the cut touches",
    ),
    "observability/masking/cards.py::_escape_kind::escape[2:]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/cards.py::_escape_kind::payload[len(payload.rstrip('0123456789')):]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/cards.py::_holds_card::sums[max(0, end - 19):end - 12]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/cards.py::_last_four::digits[-4:]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/keys.py::_letters_trie::word[1:]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/cards.py::_mask_span::parts[0::2] #1": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/cards.py::_mask_span::parts[0::2] #2": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/cards.py::_mask_span::parts[1::2]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/query.py::mask_straddling_cards::part[:low]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/query.py::mask_straddling_cards::part[high:]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/percent.py::_percent_decode::text[last:]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/percent.py::_percent_decode::text[last:start]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/cards.py::_replace::text[last:]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/cards.py::_replace::text[last:start]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/cards.py::_tail_digits::found[:0]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/keys.py::_value_span::text[start + 1:start + 2]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/keys.py::_value_span::text[start:start + 1]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/masking/keys.py::_value_span::text[start:start + 2]": (
        ENGINE,
        "splits and rejoins the text it masks, or reads digits and escapes; nothing is dropped",
    ),
    "observability/tracing/request.py::request_context::get_redactor().text(getattr(request, 'path', EMPTY), PATH_LIMIT)": (
        MASKED,
        "Redactor masks the whole value, then caps it",
    ),
    "observability/tracing/request.py::request_fields::redactor.text(getattr(plain, 'path', EMPTY), PATH_LIMIT)": (
        MASKED,
        "Redactor masks the whole value, then caps it",
    ),
    "observability/tracing/request.py::started_details::get_redactor().text(meta.get('HTTP_USER_AGENT', ''), USER_AGENT_LIMIT)": (
        MASKED,
        "Redactor masks the whole value, then caps it",
    ),
    "observability/tracing/request.py::started_details::redactor.query_string(query, QUERY_LIMIT)": (
        MASKED,
        "Redactor masks the whole value, then caps it",
    ),
    "observability/tracing/request.py::started_details::redactor.url(plain.path, query, PATH_LIMIT + QUERY_LIMIT)": (
        MASKED,
        "Redactor masks the whole value, then caps it",
    ),
    "observability/tracing/request.py::_user_values::get_redactor().text(str(username), USERNAME_LIMIT)": (
        MASKED,
        "Redactor masks the whole value, then caps it",
    ),
    "observability/logtrace/waterfall.py::Row.segments_text::{duration:.3f}": (
        NOT_CLIENT,
        "a duration in milliseconds, or a share of the request's in percent",
    ),
    "observability/logtrace/waterfall.py::Row.segments_text::{start:.3f}": (
        NOT_CLIENT,
        "a duration in milliseconds, or a share of the request's in percent",
    ),
    "observability/logtrace/waterfall.py::as_text::{ms:.1f}": (
        NOT_CLIENT,
        "a duration in milliseconds, or a share of the request's in percent",
    ),
    "observability/logtrace/waterfall.py::as_text::{percent:.0f}": (
        NOT_CLIENT,
        "a duration in milliseconds, or a share of the request's in percent",
    ),
    "observability/logtrace/waterfall.py::as_text::{row.total_ms:.1f}": (
        NOT_CLIENT,
        "a duration in milliseconds, or a share of the request's in percent",
    ),
    "observability/logtrace/waterfall.py::as_text::{split.total_ms:.1f}": (
        NOT_CLIENT,
        "a duration in milliseconds, or a share of the request's in percent",
    ),
    "observability/spans/sqlshape.py::_collapse_lists::text[i + 1:j]": (
        NOT_WRITTEN,
        "a query's shape read to see whether a list holds only placeholders; nothing is cut",
    ),
    "observability/spans/sqlshape.py::shape::parts[first_literal:]": (
        NOT_WRITTEN,
        "what the tokenizer may have misread (a quote left open) is dropped, never written",
    ),
    "observability/spans/sqlshape.py::shown::get_redactor().text(shape(sql), SHAPE_LIMIT)": (
        MASKED,
        "a query's shape (literals already placeholders): Redactor masks it whole, then caps it",
    ),
    "observability/spans/calls.py::record_call::redactor.text(parts.path or '/', PATH_LIMIT)": (
        MASKED,
        "Redactor masks the whole value, then caps it",
    ),
    "observability/spans/calls.py::record_call::redactor.text(parts.netloc.rpartition('@')[2], 255)": (
        MASKED,
        "Redactor masks the whole value, then caps it",
    ),
    "observability/templates/observability/viewer/request_list.html::template::{{ row.request_id|visible|truncatechars:24 }}": (
        MASKED,
        "a request ID: ours, or a client's refused when masking would change it; read from our files",
    ),
    "observability/templatetags/observability_viewer.py::milliseconds::{ms:,.0f}": (
        NOT_CLIENT,
        "a duration in milliseconds",
    ),
    "observability/templatetags/observability_viewer.py::milliseconds::{ms:.1f}": (
        NOT_CLIENT,
        "a duration in milliseconds",
    ),
    "observability/lines/textline.py::_render_text::escape_bar(text, VALUE_LIMIT)": (
        MASKED,
        "a field's value, masked whole by RedactionFilter or when the request was read",
    ),
    "observability/lines/textline.py::render_fields::parts[1::2]": (
        NOT_CLIENT,
        "a slice assigned, not read: every rendered value fills its gap whole, nothing is cut",
    ),
    "observability/lines/textline.py::_unquote::value[1:-1]": (
        NOT_CLIENT,
        "parsing our own lines back (timestamps, quotes, partitions)",
    ),
    "observability/lines/textline.py::parse::line[match.end():]": (
        NOT_CLIENT,
        "parsing our own lines back (timestamps, quotes, partitions)",
    ),
    "observability/lines/textline.py::stamp_time::stamp[0:4]": (
        NOT_CLIENT,
        "parsing our own lines back (timestamps, quotes, partitions)",
    ),
    "observability/lines/textline.py::stamp_time::stamp[11:13]": (
        NOT_CLIENT,
        "parsing our own lines back (timestamps, quotes, partitions)",
    ),
    "observability/lines/textline.py::stamp_time::stamp[14:16]": (
        NOT_CLIENT,
        "parsing our own lines back (timestamps, quotes, partitions)",
    ),
    "observability/lines/textline.py::stamp_time::stamp[17:19]": (
        NOT_CLIENT,
        "parsing our own lines back (timestamps, quotes, partitions)",
    ),
    "observability/lines/textline.py::stamp_time::stamp[20:23]": (
        NOT_CLIENT,
        "parsing our own lines back (timestamps, quotes, partitions)",
    ),
    "observability/lines/textline.py::stamp_time::stamp[5:7]": (
        NOT_CLIENT,
        "parsing our own lines back (timestamps, quotes, partitions)",
    ),
    "observability/lines/textline.py::stamp_time::stamp[8:10]": (
        NOT_CLIENT,
        "parsing our own lines back (timestamps, quotes, partitions)",
    ),
    "observability/lines/textline.py::parse_fields::part.partition('=')[::2]": (
        NOT_CLIENT,
        "parsing our own lines back (timestamps, quotes, partitions)",
    ),
    "observability/lines/textline.py::render_key::key[:64]": (
        MASKED,
        "a field name: chosen by code, or an event detail's key masked by Redactor.value",
    ),
    "observability/lines/textline.py::render_message::escape_bar(message, MESSAGE_LIMIT)": (
        MASKED,
        "the message, masked whole by RedactionFilter or when the request was read",
    ),
    "observability/logtrace/overview.py::_Reader._minute::head[0:4]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/overview.py::_Reader._minute::head[11:13]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/overview.py::_Reader._minute::head[14:16]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/overview.py::_Reader._minute::head[5:7]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/overview.py::_Reader._minute::head[8:10]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/overview.py::_Reader.request_text::raw[:16]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/overview.py::_Reader.security_text::raw[:16]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/overview.py::_Reader.scan::raw[:1]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/overview.py::_Reader.scan::raw[:23]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/overview.py::_Reader.request_text::head[head.find(b'] ') + 2:]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/overview.py::_Reader.security_text::head[head.find(b'[') + 1:head.find(b']')]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/linefields.py::text_fields::middle[at:None if end == -1 else end]": (
        NOT_CLIENT,
        "bytes, lines or lists read back from our own files (masked when written), split, not cut for output",
    ),
    "observability/logtrace/overview.py::_Reader.request_record::status[:1]": (
        NOT_CLIENT,
        "the status class: the first digit of a status code, compared, never shown",
    ),
    "observability/logtrace/overview.py::_Reader.request_text::(status or '')[:1]": (
        NOT_CLIENT,
        "the status class: the first digit of a status code, compared, never shown",
    ),
    "observability/logtrace/linefields.py::text_fields::key[1:-1]": (
        NOT_CLIENT,
        "one of our own field names without its space and equals sign",
    ),
    "observability/logtrace/tally.py::top_groups::sorted(groups, key=lambda g: (-g.count, -(g.last.timestamp() if g.last else 0.0), g.exception))[:limit]": (
        NOT_CLIENT,
        "the first rows of a sorted list (routes, error groups), not text",
    ),
    "observability/logtrace/tally.py::top_routes::by_errors[:TOP]": (
        NOT_CLIENT,
        "the first rows of a sorted list (routes, error groups), not text",
    ),
    "observability/logtrace/tally.py::top_routes::by_p95[:TOP]": (
        NOT_CLIENT,
        "the first rows of a sorted list (routes, error groups), not text",
    ),
    "observability/logtrace/errorgroups.py::error_kind::get_redactor().text(said.strip(), MESSAGE_KEPT)": (
        MASKED,
        "Redactor masks the whole exception message, then caps it",
    ),
    "observability/templates/observability/viewer/overview.html::template::{{ group.request_id|visible|truncatechars:24 }}": (
        MASKED,
        "a request ID: ours, or a client's refused when masking would change it; read from our files",
    ),
    "observability/viewer/overview.py::_series::{value:.6g}": (
        NOT_CLIENT,
        "a count, as a number for the chart",
    ),
    "observability/viewer/overview.py::cache_key::hashlib.sha256(f'{directory}\\x00{threshold}'.encode()).hexdigest()[:24]": (
        NOT_CLIENT,
        "a hex digest of our settings, for a cache key",
    ),
}


def _keys(found: Counter[str]) -> set[str]:
    return {
        f"{key} #{n + 1}" if count > 1 else key
        for key, count in found.items()
        for n in range(count)
    }


def test_every_cap_site_is_allowlisted_with_its_reason():
    """A new slice, cap or truncation fails here until ALLOWLIST says why it is safe."""
    found = _keys(find_sites())
    assert found - set(ALLOWLIST) == set(), "new cap sites: mask first, then add them"
    assert set(ALLOWLIST) - found == set(), "gone: remove them from ALLOWLIST"
    assert all(kind in (NOT_CLIENT, NOT_WRITTEN, MASKED, ENGINE) for kind, _ in ALLOWLIST.values())


def test_the_finder_sees_every_kind_of_cut(tmp_path, monkeypatch):
    source = (
        "import textwrap\n"
        "from django.utils.text import Truncator\n"
        "def f(x, n):\n"
        "    a = x[:150]\n"
        "    b = Truncator(x).chars(9)\n"
        "    c = '%.20s' % x\n"
        "    d = f'{x:.20}'\n"
        "    e = textwrap.shorten(x, 9)\n"
        "    g = x.ljust(9)\n"
        "    h = cap(x, 9)\n"
        "    i = escape(x, 9)\n"
        "    j = '{:.5}'.format(x)\n"
        "    k = self.fill(x)\n"  # a method of ours named like textwrap's: not a cut
    )
    (tmp_path / "observability").mkdir()
    (tmp_path / "observability" / "m.py").write_text(source)
    (tmp_path / "observability" / "t.html").write_text("{{ row.name|truncatechars:9 }}")
    (tmp_path / "billing").mkdir()
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = find_sites()
    assert len(found) == 10, found  # all but self.fill
    assert "observability/t.html::template::{{ row.name|truncatechars:9 }}" in found


# ---------------------------------------------------------------------------- finding 3: the login


def _card_digits_in(text: str, card: str) -> list[str]:
    """Runs of `text` holding more than four consecutive digits of `card` (decoded or raw)."""
    from tests.observability.test_redaction import surviving, without_times

    return surviving(card, _MARKERS.sub("[cut]", without_times(text)))


_MARKERS = re.compile(r"\.\.\.\[\d+ (?:more )?chars(?: before)?\]")


@pytest.mark.django_db
@pytest.mark.parametrize("letters", [130, 135, 140, 149])
def test_login_username_is_masked_before_it_is_cut(logs, letters):
    """A username of letters and a card number: the security file keeps at most four digits."""
    username = "a" * letters + CARD
    response = Client().post(
        "/api/v1/auth/token/",
        {"username": username, "password": "wrong-password"},
        content_type="application/json",
    )
    assert response.status_code == 401
    security = logs.text("security")
    assert "login_failed" in security
    assert "****1111" in security
    assert not _card_digits_in(logs.everything(), CARD), security


# ---------------------------------------------------------------------------- mask first, then cut
#
# Each MASKED site gets a driver: it sends texts through the real channel that reaches the
# site and returns what was written. A card (any separators) is put at every offset around
# the site's limit, after the letters QQ; no run read after a QQ may hold more than four of
# its digits. A cut made before masking keeps up to 18 of them.

from observability.logtrace.errorgroups import MESSAGE_KEPT  # noqa: E402
from observability.masking.escaping import (  # noqa: E402
    ARG_LIMIT,
    MESSAGE_LIMIT,
    PATH_LIMIT,
    QUERY_LIMIT,
    TRACEBACK_LINE_LIMIT,
    USER_AGENT_LIMIT,
    USERNAME_LIMIT,
    VALUE_LIMIT,
)
from tests.observability.test_card_corpus import digit_runs_after_marker, longest_common_run  # noqa: E402
from tests.polling import DEADLINE  # noqa: E402


def _request_id_of(response) -> str:
    return response["X-Request-ID"]


def drive_path(logs, texts):
    from urllib.parse import quote

    for text in texts:
        Client().get("/t/plain/" + quote(text) + "/")
    return logs.everything()


def drive_query(logs, texts):
    from urllib.parse import urlencode

    for text in texts:
        Client().get("/t/plain/?" + urlencode({"q": text}))
    return logs.everything()


def drive_url(logs, texts):
    from urllib.parse import quote

    for text in texts:  # the path's end and the query's start make the card
        half = len(text) // 2
        Client().get("/t/plain/" + quote(text[:half]) + "?" + quote(text[half:]))
    return logs.everything()


def drive_user_agent(logs, texts):
    for text in texts:
        Client().get("/t/plain/", HTTP_USER_AGENT=text)
    return logs.everything()


def drive_username(logs, texts):
    from observability.tracing.request import user_fields

    class User:
        pk = 7

        def __init__(self, name):
            self.name = name

        def get_username(self):
            return self.name

    return "\n".join(user_fields(User(text))["username"] for text in texts)


def drive_login(logs, texts):
    for text in texts:
        Client().post(
            "/api/v1/auth/token/",
            {"username": text, "password": "x"},
            content_type="application/json",
        )
    return logs.everything()


def drive_arguments(logs, texts):
    import logging

    logger = logging.getLogger("billing.views")
    for text in texts:
        logger.info("one %s", text)
        # A card across two arguments, the first one long enough to be cut in the card.
        split = text.index("ZZ") - 6
        logger.info("two %s%s", text[:split] + " " * 60, text[split:])
    return logs.everything()


def drive_message(logs, texts, log_format="text"):
    import logging

    from tests.conftest import configure_logs

    logs = configure_logs(logs.path / log_format, log_format=log_format)
    logger = logging.getLogger("billing.views")
    for text in texts:
        logger.info(text)
        logger.info("x", extra={"note": text, "nested": {text: 1, "v": text}})
    return logs.everything()


def drive_task_failed(logs, texts):
    from observability.background.tasks import TaskLines

    for text in texts:
        TaskLines("probe", 1).failed(ValueError(text), None)
    return logs.everything()


def drive_task_retried(logs, texts):
    from observability.background.tasks import TaskLines

    for text in texts:
        TaskLines("probe", 1).retried(text, 1.0)
    return logs.everything()


def drive_task_published(logs, texts):
    from observability import request_context
    from observability.background.tasks import log_published

    with request_context(request_id="cap-published"):
        for text in texts:
            log_published(text, "t-1")
    return logs.everything()


def drive_task_name(logs, texts):
    from observability.background.tasks import task_context

    return "\n".join(
        task_context({}, task_id="t", task_name=text, attempt=1)["task_name"] for text in texts
    )


def drive_task_username(logs, texts):
    from observability.background.tasks import task_context

    fields = [
        task_context({"obs_username": t}, task_id="t", task_name="p", attempt=1) for t in texts
    ]
    return "\n".join(f["username"] for f in fields)


def drive_webhook_error(logs, texts):
    from billing.webhooks.delivery import error_text

    return "\n".join(error_text(ValueError(text), "ValueError: ") for text in texts)


def drive_json(logs, texts):
    return drive_message(logs, texts, "json")


def drive_ecs(logs, texts):
    return drive_message(logs, texts, "ecs")


def drive_event_key(logs, texts):
    from observability import log_security_event

    for text in texts:
        log_security_event(event_type="probe", details={text: 1, "x": {text: text}})
    return logs.everything()


def drive_flood_example(logs, texts):
    """A summary keeps its first suppressed record's message, masked then capped."""
    import logging

    from observability.testing import drain_logs, reset_flood_control

    logger = logging.getLogger("billing.security")
    for text in texts:
        reset_flood_control()
        for _ in range(12):  # past FLOOD_LIMIT (10): the rest are summarised
            logger.warning("probe %s", text)
        drain_logs()
    return logs.everything()


def drive_traceback(logs, texts):
    import logging

    logger = logging.getLogger("billing.views")
    for text in texts:
        try:
            raise ValueError(text)
        except ValueError:
            logger.exception("failed")
        try:
            raise ValueError("a" * 40_000 + text)
        except ValueError:
            logger.exception("failed")
    return logs.everything()


def drive_logtrace(logs, texts):
    import io

    from django.core.management import call_command

    from observability import flush_logs

    out = io.StringIO()
    for text in texts:
        response = Client(raise_request_exception=False).get("/t/raise/", {"c": text})
        assert flush_logs(DEADLINE)
        call_command("logtrace", _request_id_of(response), "--dir", str(logs.path), stdout=out)
    return out.getvalue()


def drive_viewer(logs, texts):
    from django.contrib.auth import get_user_model
    from django.test import override_settings

    for text in texts:
        Client().get("/t/plain/", HTTP_X_REQUEST_ID=text)
    staff = get_user_model().objects.get_or_create(username="cap-staff", is_staff=True)[0]
    client = Client()
    client.force_login(staff)
    with override_settings(LOG_BASE_DIR=str(logs.path)):
        return client.get("/ops/requests/").content.decode()


def drive_viewer_query(logs, texts):
    """A staff page's audit event keeps its query, masked then capped."""
    from django.contrib.auth import get_user_model
    from django.test import override_settings

    staff = get_user_model().objects.get_or_create(username="cap-staff", is_staff=True)[0]
    client = Client()
    client.force_login(staff)
    with override_settings(LOG_BASE_DIR=str(logs.path)):
        for text in texts:
            client.get("/ops/requests/", {"path": "/" + text})
    return logs.everything()


def drive_overview(logs, texts):
    """An exception's message on the overview page: masked whole, then capped (errorgroups'
    MESSAGE_KEPT). One page per text: the newest example's message is the one shown."""
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.test import override_settings

    from observability import flush_logs

    staff = get_user_model().objects.get_or_create(username="cap-staff", is_staff=True)[0]
    client = Client()
    client.force_login(staff)
    pages = []
    with override_settings(LOG_BASE_DIR=str(logs.path)):
        for text in texts:
            Client(raise_request_exception=False).get("/t/raise/", {"c": text})
            assert flush_logs(10)
            cache.clear()  # the page computed afresh, with this text's failure the newest
            pages.append(client.get("/ops/overview/").content.decode())
    return "\n".join(pages)


# The overview's message reads "bad card <text>": the card is put this much earlier.
_RAISED = len("bad card ")


def drive_sql_shape(logs, texts):
    """A query's shape keeps its quoted identifiers: one is masked before the shape's cap."""
    from observability.spans.sqlshape import shown

    return "\n".join(shown(f'"{text}"') for text in texts)


def drive_call(logs, texts, where="path"):
    from urllib.parse import quote

    from observability.spans.calls import record_call

    for text in texts:
        url = f"http://ledger/{quote(text)}" if where == "path" else f"http://{text}/x"
        record_call("GET", url, {}, 200, None, 0.01)
    return logs.everything()


def drive_call_host(logs, texts):
    return drive_call(logs, texts, "host")


# driver, the limit around which the card is put, the separators it may use
DRIVERS = {
    "sql_shape": (drive_sql_shape, 2000, " -./"),
    "call_path": (drive_call, PATH_LIMIT, " -./"),
    "call_host": (drive_call_host, 255, " -."),
    "path": (drive_path, PATH_LIMIT, " -./\u00a0\u3164"),
    "query": (drive_query, QUERY_LIMIT, " -./\u00a0%"),
    "url": (drive_url, PATH_LIMIT, " -./"),
    "user_agent": (drive_user_agent, USER_AGENT_LIMIT, " -./;"),
    "username": (drive_username, USERNAME_LIMIT, " -./\u3164"),
    "login": (drive_login, USERNAME_LIMIT, " -./"),
    "arguments": (drive_arguments, ARG_LIMIT, " -./"),
    "message": (drive_message, MESSAGE_LIMIT, " -./\u00a0"),
    "json": (drive_json, VALUE_LIMIT, " -./\u00a0"),
    "ecs": (drive_ecs, VALUE_LIMIT, " -./"),
    "event_key": (drive_event_key, 64, " -./"),
    "traceback": (drive_traceback, TRACEBACK_LINE_LIMIT, " -./"),
    "flood_example": (drive_flood_example, ARG_LIMIT, " -./"),
    "logtrace": (drive_logtrace, 64, " -./"),
    "viewer": (drive_viewer, 24, "-._:"),
    "viewer_query": (drive_viewer_query, 256, " -./"),
    "overview": (drive_overview, MESSAGE_KEPT - _RAISED, " -./"),
    "task_failed": (drive_task_failed, 1000, " -./"),
    "task_retried": (drive_task_retried, 1000, " -./"),
    "task_name": (drive_task_name, 200, " -./"),
    "task_username": (drive_task_username, USERNAME_LIMIT, " -./"),
    "task_published": (drive_task_published, 200, " -./"),
    "webhook_error": (drive_webhook_error, 300, " -./"),
}
# Which driver reaches each MASKED site.
SITE_DRIVERS = {
    "observability/spans/sqlshape.py::shown": "sql_shape",
    "observability/spans/calls.py::record_call::redactor.text(parts.path": "call_path",
    "observability/spans/calls.py::record_call::redactor.text(parts.netloc": "call_host",
    "observability/ecs_formatter.py": "ecs",
    "observability/masking/escaping.py::cap": "message",
    "observability/masking/escaping.py::escape::": "message",
    "observability/masking/escaping.py::escape_bar": "message",
    "observability/masking/escaping.py::escape_traceback": "traceback",
    "observability/masking/escaping.py::cap_traceback": "traceback",
    "observability/filters.py": "arguments",
    "observability/guard/flood_windows.py::WindowTable._example": "flood_example",
    "observability/json_formatter.py::JsonFormatter.render": "json",
    "observability/json_formatter.py::_json_value": "json",
    "observability/management/logtrace_output.py": "logtrace",
    "observability/tracing/request.py::request_context": "path",
    "observability/tracing/request.py::request_fields": "path",
    "observability/tracing/request.py::started_details::get_redactor().text(meta.get('HTTP_USER_AGENT'": "user_agent",
    "observability/tracing/request.py::started_details::redactor.query_string": "query",
    "observability/tracing/request.py::started_details::redactor.url": "url",
    "observability/tracing/request.py::_user_values": "username",
    "observability/templates": "viewer",
    "observability/viewer/views.py::_query": "viewer_query",
    "observability/logtrace/errorgroups.py": "overview",
    "observability/lines/textline.py::render_message": "message",
    "observability/lines/textline.py::_render_text": "message",
    "observability/lines/textline.py::render_key": "event_key",
    "observability/background/tasks.py::TaskLines.failed": "task_failed",
    "observability/background/tasks.py::log_published": "task_published",
    "observability/background/tasks.py::TaskLines.retried": "task_retried",
    "observability/background/tasks.py::task_context::get_redactor().text(task_name": "task_name",
    "observability/background/tasks.py::task_context::get_redactor().text(username": "task_username",
    "billing/webhooks/delivery.py::error_text": "webhook_error",
}


def test_every_masked_site_has_a_driver():
    for site, (kind, _) in ALLOWLIST.items():
        if kind == MASKED:
            assert any(site.startswith(prefix) for prefix in SITE_DRIVERS), site
    assert set(SITE_DRIVERS.values()) <= set(DRIVERS)


@st.composite
def placed_cards(draw, separators: str) -> tuple[str, str]:
    """(the card's digits, the card as written with some separators between digits)."""
    from tests.observability.test_card_corpus import luhn_complete

    length = draw(st.integers(13, 19))
    body = draw(st.lists(st.integers(0, 9), min_size=length - 2, max_size=length - 2))
    digits = "".join(map(str, luhn_complete([draw(st.integers(1, 9)), *body])))
    gaps = draw(st.lists(st.text(separators, max_size=2), min_size=length - 1, max_size=length - 1))
    return digits, "".join(d + g for d, g in zip(digits, [*gaps, ""], strict=True))


def _check(output: str, digits: str, *, written: bool = True) -> None:
    runs = digit_runs_after_marker(_MARKERS.sub("Z", output))
    assert runs or not written, "the driver wrote its lines"
    if not runs:
        return
    worst = max(runs, key=lambda run: longest_common_run(run, digits))
    assert longest_common_run(worst, digits) <= 4, (digits, worst)


@pytest.mark.django_db
@pytest.mark.urls("tests.urls")
@pytest.mark.parametrize("name", sorted(DRIVERS))
@given(data=st.data())
@hsettings(
    max_examples=2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_cards_at_every_offset_around_a_cap_are_masked_before_the_cut(logs, name, data):
    drive, limit, separators = DRIVERS[name]
    digits, written = data.draw(placed_cards(separators))
    card = "QQ" + written + "ZZ"
    step = STEPS.get(name, 1)
    tail = "" if name == "viewer" else " tail"  # a request ID holds no space
    texts = [
        "a" * max(0, limit - offset) + card + tail for offset in range(-2, len(card) + 3, step)
    ]
    # The viewer shows no request ID a card was in: such IDs are refused when they come.
    _check(drive(logs, texts), digits, written=name != "viewer")


# Drivers that make a request (or run a command) per text try every second (fifth) offset.
STEPS = {
    "viewer_query": 5,
    "path": 2,
    "query": 2,
    "url": 2,
    "user_agent": 2,
    "login": 2,
    "logtrace": 5,
    "viewer": 5,
    "overview": 5,
}
