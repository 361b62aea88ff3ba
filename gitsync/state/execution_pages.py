"""Reads of executions, task runs and logs for the API and the web UI: pages in keyset order, counts by day,
the flows whose last run failed, the last successful revision of a flow.

Every page is read in id order (ids sort by creation time: `executions.new_execution_id`), newest first, from the
id after the previous page's last one (`before`): a page costs what it holds, however deep it is, and a row written
between two pages is neither skipped nor shown twice. Fires written ahead (AHEAD) are never shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gitsync.state.database import Store, loads
from gitsync.state.executions import AHEAD
from runner.types import LogLevel

_SUMMARY = """e.id, e.flow_uid AS flow, e.revision, e.commit_sha AS "commit", e.source, e.state, e.trigger_kind,
    e.trigger_uid AS "trigger", e.scheduled_at, e.created_at, e.started_at, e.ended_at, e.labels, e.error,
    e.attempt, e.original_id, e.parent_execution"""


@dataclass(frozen=True)
class ExecutionFilter:
    """What an executions page is narrowed to; each field None for "any"."""

    flow: str | None = None
    namespace: str | None = None
    """The namespace and its children."""
    states: Sequence[str] | None = None
    trigger_kinds: Sequence[str] | None = None
    since: str | None = None
    """ISO-8601 UTC: created at or after."""
    until: str | None = None
    """ISO-8601 UTC: created before."""


def _where(filters: ExecutionFilter) -> tuple[list[str], list[Any]]:
    where, params = [f"e.state != '{AHEAD}'"], []
    if filters.flow:
        where.append("e.flow_uid = ?")
        params.append(filters.flow)
    if filters.namespace:
        # flow uids are `namespace.id` and an id has no dot: the namespace's flows and its children's are the uids
        # from 'ns.' up to 'ns/' ('/' follows '.'), a range the flow index reads
        where.append("e.flow_uid > ? AND e.flow_uid < ?")
        params += [filters.namespace + ".", filters.namespace + "/"]
    for column, values in (("state", filters.states), ("trigger_kind", filters.trigger_kinds)):
        if values:
            where.append(f"e.{column} IN ({','.join('?' * len(values))})")
            params += list(values)
    if filters.since:
        where.append("e.created_at >= ?")
        params.append(filters.since)
    if filters.until:
        where.append("e.created_at < ?")
        params.append(filters.until)
    return where, params


def executions_page(
    store: Store, filters: ExecutionFilter, before: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Executions matching `filters`, newest first, with an id below `before`; at most `limit`."""
    where, params = _where(filters)
    if before:
        where.append("e.id < ?")
        params.append(before)
    rows = store.query(
        f"SELECT {_SUMMARY} FROM executions e WHERE {' AND '.join(where)} ORDER BY e.id DESC LIMIT ?",
        (*params, int(limit)),
    )
    for row in rows:
        row["labels"] = loads(row["labels"]) or {}
    return rows


def execution_detail(store: Store, execution_id: str) -> dict[str, Any] | None:
    """One execution with its inputs, outputs and trigger variables decoded; None when there is none."""
    row = store.query_one(
        f"""SELECT {_SUMMARY}, e.inputs, e.outputs, e.trigger_vars FROM executions e
            WHERE e.id = ? AND e.state != '{AHEAD}'""",
        (execution_id,),
    )
    if row is not None:
        for key in ("labels", "inputs", "outputs", "trigger_vars"):
            row[key] = loads(row[key]) or {}
    return row


def task_run_rows(store: Store, execution_id: str) -> list[dict[str, Any]]:
    """Every task run of an execution (one row per attempt, ForEach values their own), in the order they started."""
    rows = store.query(
        """SELECT id, task_id, task_type, parent_id, value, iteration, attempt, state, started_at, ended_at, outputs,
                  error FROM task_runs WHERE execution_id = ? ORDER BY id""",
        (execution_id,),
    )
    for row in rows:
        row["outputs"] = loads(row["outputs"]) or {}
    return rows


def logs_page(
    store: Store,
    execution_id: str,
    *,
    after: int = 0,
    limit: int = 500,
    min_level: str | None = None,
    task_run_id: str | None = None,
    text: str | None = None,
) -> list[dict[str, Any]]:
    """An execution's log lines with an id above `after`, oldest first: at `min_level` or above, of one task run,
    containing `text` (case-insensitive). At most `limit`."""
    where, params = ["l.execution_id = ?", "l.id > ?"], [execution_id, int(after)]
    if min_level:
        order = [level.value for level in LogLevel]  # TRACE < DEBUG < INFO < WARN < ERROR
        levels = order[order.index(min_level) :]
        where.append(f"l.level IN ({','.join('?' * len(levels))})")
        params += levels
    if task_run_id:
        where.append("l.task_run_id = ?")
        params.append(task_run_id)
    if text:
        where.append("instr(lower(l.message), ?) > 0")
        params.append(text.lower())
    return store.query(
        f"""SELECT l.id, l.at, l.level, l.message, l.task_run_id, t.task_id FROM logs l
            LEFT JOIN task_runs t ON t.id = l.task_run_id WHERE {" AND ".join(where)} ORDER BY l.id LIMIT ?""",
        (*params, int(limit)),
    )


def counts_by_day(store: Store, since: str) -> list[dict[str, Any]]:
    """Executions created on or after the day `since` (YYYY-MM-DD, UTC), counted by day and state.

    The ended ones are counted from the index `executions_ended_day` (the same expression), the open ones (few)
    from `executions_trigger_open`: no read of the whole table."""
    return store.query(
        f"""SELECT day, state, sum(n) AS n FROM (
                SELECT substr(created_at, 1, 10) AS day, state, count(*) AS n FROM executions
                 WHERE ended_at IS NOT NULL AND substr(created_at, 1, 10) >= :day
                 GROUP BY substr(created_at, 1, 10), state
                UNION ALL
                SELECT substr(created_at, 1, 10) AS day, state, count(*) AS n FROM executions
                 WHERE ended_at IS NULL AND state != '{AHEAD}' AND created_at >= :day GROUP BY day, state)
            GROUP BY day, state ORDER BY day, state""",
        {"day": since[:10]},
    )


def failing_flows(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    """Active flows whose latest ended execution did not succeed, the most recent failure first.

    Read from the failures, newest first (the index `executions_failed`, named so that the planner, which has no
    statistics, does not sort every failure first): a failure counts when no later execution of its flow has
    ended. It stops at `limit`, however many flows there are."""
    return store.query(
        """SELECT e.flow_uid AS flow, e.id, e.state, e.ended_at, e.error, e.revision, e.commit_sha AS "commit",
                  e.source
           FROM executions e INDEXED BY executions_failed JOIN flows f ON f.uid = e.flow_uid
           WHERE e.ended_at IS NOT NULL AND e.state IN ('FAILED', 'KILLED', 'WARNING')
             AND NOT EXISTS (SELECT 1 FROM executions x
                             WHERE x.flow_uid = e.flow_uid AND x.id > e.id AND x.ended_at IS NOT NULL)
           ORDER BY e.id DESC LIMIT ?""",
        (int(limit),),
    )


def last_executions(store: Store, flow_uids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The latest execution of each flow in `flow_uids` (id, state, created_at), by flow."""
    found: dict[str, dict[str, Any]] = {}
    for uid in flow_uids:
        row = store.query_one(
            f"""SELECT id, state, created_at FROM executions WHERE flow_uid = ? AND state != '{AHEAD}'
                ORDER BY id DESC LIMIT 1""",
            (uid,),
        )
        if row is not None:
            found[uid] = row
    return found


def last_success(store: Store, flow_uid: str) -> dict[str, Any] | None:
    """The flow's latest SUCCESS execution (id, revision, commit, ended_at), or None."""
    return store.query_one(
        """SELECT id, revision, commit_sha AS "commit", ended_at FROM executions
           WHERE flow_uid = ? AND state = 'SUCCESS' ORDER BY id DESC LIMIT 1""",
        (flow_uid,),
    )
