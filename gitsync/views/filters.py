"""The executions filter of a validated query (`gitsync.http.queries.ExecutionQuery`), for the web UI's lists: the
executions page's form and a flow's last runs narrow the list the way the API's query does."""

from __future__ import annotations

from gitsync.http.queries import ExecutionQuery, iso
from gitsync.state.execution_pages import ExecutionFilter


def execution_filter(query: ExecutionQuery) -> ExecutionFilter:
    return ExecutionFilter(
        flow=query.flow,
        namespace=query.namespace,
        states=[s.value for s in query.state] if query.state else None,
        trigger_kinds=list(query.trigger_kind) if query.trigger_kind else None,
        since=iso(query.since),
        until=iso(query.until),
    )


def of_flow(uid: str) -> ExecutionFilter:
    """Every execution of one flow."""
    return ExecutionFilter(flow=uid)
