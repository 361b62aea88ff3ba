"""An execution's task runs as Gantt rows (pure: `now` is passed in).

Each row is one attempt of one task, nested under the task run that contains it (a flowable's children below it,
in the order they started), placed on the execution's time span as a left offset and a width in percent. A run
that started and has not ended (running, paused) reaches to `now`; one that never started has no bar.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MIN_WIDTH = 0.4
"""Percent: a run of a few milliseconds in a long execution still shows."""


@dataclass(frozen=True)
class Row:
    id: str
    task_id: str
    depth: int
    attempt: int
    state: str
    started_at: str | None
    ended_at: str | None
    left: float | None
    """Percent of the span before the bar; None for a run that never started."""
    width: float | None
    duration: str
    running: bool
    """Started, not ended: the bar reaches to `now`."""


@dataclass(frozen=True)
class Timeline:
    rows: tuple[Row, ...]
    start: datetime | None
    end: datetime | None
    span: str
    """The whole span's duration, in words ("" without a started run)."""


def parse_time(text: Any) -> datetime | None:
    """An ISO-8601 time as stored (naive times are UTC); None for anything else."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_duration(seconds: float) -> str:
    """A duration as a person reads it: `350 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`, `3 d 04 h`."""
    if seconds < 0:
        seconds = 0.0
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
    return f"{whole // 86400} d {whole % 86400 // 3600:02d} h"


def _ordered(runs: list[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], int]]:
    """Depth first: each run followed by the runs inside it, siblings by start time (unstarted last, as given)."""
    ids = {str(r.get("id")) for r in runs}
    children: dict[str | None, list[Mapping[str, Any]]] = {}
    for run in runs:
        parent = run.get("parent_id")
        key = str(parent) if parent is not None and str(parent) in ids and parent != run.get("id") else None
        children.setdefault(key, []).append(run)

    def sort_key(run: Mapping[str, Any]) -> tuple[int, str, int]:
        started = run.get("started_at")
        attempt = run.get("attempt")
        return (0, started, attempt if isinstance(attempt, int) else 1) if isinstance(started, str) else (1, "", 0)

    for siblings in children.values():
        siblings.sort(key=sort_key)
    out: list[tuple[Mapping[str, Any], int]] = []
    seen: set[str] = set()
    stack = [(run, 0) for run in reversed(children.get(None, []))]
    while stack:
        run, depth = stack.pop()
        ident = str(run.get("id"))
        if ident in seen:
            continue
        seen.add(ident)
        out.append((run, depth))
        stack.extend((child, depth + 1) for child in reversed(children.get(ident, [])))
    # runs in a parent cycle (never written so) are shown at the top level rather than lost
    out += [(run, 0) for run in runs if str(run.get("id")) not in seen]
    return out


def build_timeline(runs: Iterable[Mapping[str, Any]], now: datetime) -> Timeline:
    """The Gantt rows of these task runs (dicts with id, task_id, parent_id, attempt, state, started_at,
    ended_at as ISO strings)."""
    runs = list(runs)
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    spans: dict[str, tuple[datetime, datetime, bool]] = {}
    for run in runs:
        start = parse_time(run.get("started_at"))
        if start is None:
            continue
        end = parse_time(run.get("ended_at"))
        running = end is None
        spans[str(run.get("id"))] = (start, max(end if end is not None else now, start), running)
    first = min((s for s, _, _ in spans.values()), default=None)
    last = max((e for _, e, _ in spans.values()), default=None)
    total = (last - first).total_seconds() if first is not None and last is not None else 0.0
    rows = []
    for run, depth in _ordered(runs):
        ident = str(run.get("id"))
        attempt = run.get("attempt")
        span = spans.get(ident)
        left = width = None
        duration = ""
        running = False
        if span is not None and first is not None:
            start, end, running = span
            seconds = (end - start).total_seconds()
            duration = format_duration(seconds)
            if total > 0:
                left = round(100 * (start - first).total_seconds() / total, 3)
                width = round(max(100 * seconds / total, MIN_WIDTH), 3)
                left = min(left, 100 - MIN_WIDTH)
                width = min(width, round(100 - left, 3))
            else:
                left, width = 0.0, 100.0
        rows.append(
            Row(
                id=ident,
                task_id=str(run.get("task_id") or ""),
                depth=depth,
                attempt=attempt if isinstance(attempt, int) else 1,
                state=str(run.get("state") or ""),
                started_at=run.get("started_at") if isinstance(run.get("started_at"), str) else None,
                ended_at=run.get("ended_at") if isinstance(run.get("ended_at"), str) else None,
                left=left,
                width=width,
                duration=duration,
                running=running,
            )
        )
    return Timeline(tuple(rows), first, last, format_duration(total) if first is not None else "")
