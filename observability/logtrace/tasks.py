"""Background tasks in the logs: one task's records (`logtrace --task`), and the tasks of a
request's story, each with its outcome.

A task's records carry `task_id`, `task_name`, `attempt` and the ID of the request that set
it off (observability.background.tasks); its lifecycle lines carry `task_event` (started, succeeded,
failed, retried).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from observability.logtrace.files import lines_holding, log_files, newest_first
from observability.logtrace.records import Record, parse_line

OUTCOMES = ("succeeded", "failed", "retried")


@dataclass
class TaskSummary:
    task_id: str
    name: str
    outcome: str  # the last outcome line's; "running" when none yet
    attempts: int
    first: Record
    last: Record

    def line(self) -> str:
        return (
            f"task {self.task_id} {self.name}: {self.outcome} "
            f"(attempts: {self.attempts}) {self.first.time:%H:%M:%S.%f}"[:-3]
            + f" -> {self.last.time:%H:%M:%S.%f}"[:-3]
        )


def task_records(directory: Path, task_id: str) -> list[Record]:
    """Every record of one task (every attempt) from every file, in time order, once each."""
    needle = task_id.encode()
    if not needle:
        return []
    found: dict[str, Record] = {}
    for tag, path in log_files(directory):
        for line in lines_holding(path, (needle,), needle):
            record = parse_line(line, tag)
            if record is None or str(record.fields.get("task_id")) != task_id:
                continue
            key = str(record.fields.get("record_id") or record.raw)  # the errors file's copy
            found.setdefault(key, record)
    return sorted(found.values(), key=lambda r: r.time)


def summarise_tasks(records: list[Record]) -> list[TaskSummary]:
    """The tasks among a story's records, in the order they started, each with its outcome."""
    tasks: dict[str, TaskSummary] = {}
    for record in records:
        fields = record.fields
        task_id = fields.get("task_id")
        if task_id in (None, "-"):
            continue
        summary = tasks.get(str(task_id))
        if summary is None:
            name = str(fields.get("task_name", "-"))
            summary = tasks[str(task_id)] = TaskSummary(
                str(task_id), name, "running", 0, record, record
            )
        summary.last = record
        event = fields.get("task_event")
        if event == "started":
            summary.attempts += 1
            summary.outcome = "running"
        elif event in OUTCOMES:
            summary.outcome = str(event)
    return list(tasks.values())


#: The most lines of the general file the failed/retried listing reads, newest first.
LISTING_LINE_BUDGET = 50_000
_OUTCOME_NEEDLES = (b"task_event=failed", b"task_event=retried", b'"task_event"')


def recent_outcomes(
    directory: Path, *, limit: int = 100, line_budget: int = LISTING_LINE_BUDGET
) -> tuple[list[Record], bool]:
    """The newest failed and retried task lines (newest first), and whether the budget of
    lines ran out before `limit` were found (the listing is then partial)."""
    found: list[Record] = []
    read = 0
    for tag, raw in newest_first(directory, "general"):
        read += 1
        if read > line_budget:
            return found, True
        if not any(needle in raw for needle in _OUTCOME_NEEDLES):
            continue  # not a task outcome line: never parsed
        record = parse_line(raw.decode("utf-8", errors="replace"), tag)
        if record is None or record.fields.get("task_event") not in ("failed", "retried"):
            continue
        found.append(record)
        if len(found) >= limit:
            break
    return found, False
