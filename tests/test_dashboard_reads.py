"""The dashboard's reads of a big history (issue 13, point 3; bench/bench_ui.py measures them on 100,000
executions): what they return, over executions run for real, and that they read indexes of ended executions rather
than the executions table or every flow. The plans are checked because SQLite's planner picks them: a table scan
here costs every dashboard view tens of milliseconds on a 100,000-execution database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from runtime import Runtime

from gitsync.state import execution_pages
from gitsync.state.database import Store


def flow(flow_id: str, fail: bool = False) -> str:
    return f"""\
id: {flow_id}
namespace: acme.dash
inputs:
  - id: fail
    type: BOOLEAN
    defaults: {str(fail).lower()}
tasks:
  - id: check
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{{{ inputs.fail }}}}"
    errorMessage: "{flow_id} was asked to fail"
"""


@pytest.fixture
def runtime(tmp_path: Any) -> Iterator[Runtime]:
    rt = Runtime(tmp_path)
    yield rt
    rt.close()


def plans(store: Store, call: Callable[[], object]) -> list[str]:
    """The query plan of each statement `call` runs on the store's connection (traced with its values bound)."""
    statements: list[str] = []
    with store.atomic() as conn:
        conn.set_trace_callback(statements.append)
        try:
            call()
        finally:
            conn.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert selects, statements
    return [" | ".join(row["detail"] for row in store.query("EXPLAIN QUERY PLAN " + sql)) for sql in selects]


def test_executions_by_day_count_the_ended_and_the_open_by_state(runtime: Runtime) -> None:
    runtime.deploy({"ok.yaml": flow("ok"), "bad.yaml": flow("bad", fail=True)})
    assert runtime.run("acme.dash.ok")["state"] == "SUCCESS"
    assert runtime.run("acme.dash.ok")["state"] == "SUCCESS"
    assert runtime.run("acme.dash.bad")["state"] == "FAILED"
    runtime.runs.create("acme.dash.ok")  # created, not run: open
    today = datetime.now(UTC).date().isoformat()
    assert execution_pages.counts_by_day(runtime.store, today) == [
        {"day": today, "state": "CREATED", "n": 1},
        {"day": today, "state": "FAILED", "n": 1},
        {"day": today, "state": "SUCCESS", "n": 2},
    ]
    assert execution_pages.counts_by_day(runtime.store, "2999-01-01") == []


def test_executions_by_day_read_an_index_of_ended_executions_not_the_table(runtime: Runtime) -> None:
    (plan,) = plans(runtime.store, lambda: execution_pages.counts_by_day(runtime.store, "2026-01-01"))
    assert "SEARCH executions USING INDEX executions_ended_day" in plan, plan
    assert "SCAN executions |" not in plan + " |", plan  # no part of it reads the whole table


def test_failing_flows_are_those_whose_latest_ended_run_failed(runtime: Runtime) -> None:
    runtime.deploy({f"{name}.yaml": flow(name) for name in ("fixed", "broke", "retrying", "removed")})
    for name, outcomes in {
        "fixed": [True, False],
        "broke": [False, True],
        "retrying": [True],
        "removed": [True],
    }.items():
        for fail in outcomes:
            runtime.run(f"acme.dash.{name}", fail=fail)
    runtime.runs.create("acme.dash.retrying")  # a later run, not ended: the failure is still its latest end
    runtime.deploy({"removed.yaml": None})  # not an active flow any more
    failing = execution_pages.failing_flows(runtime.store)
    assert [(row["flow"], row["state"]) for row in failing] == [
        ("acme.dash.retrying", "FAILED"),
        ("acme.dash.broke", "FAILED"),
    ]
    assert failing[1]["error"] == "task 'check': broke was asked to fail"
    assert execution_pages.failing_flows(runtime.store, limit=1)[0]["flow"] == "acme.dash.retrying"


def test_failing_flows_read_the_failures_newest_first_not_every_flow(runtime: Runtime) -> None:
    (plan,) = plans(runtime.store, lambda: execution_pages.failing_flows(runtime.store))
    assert "SCAN e USING INDEX executions_failed" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # read in order, so it stops after `limit`
    assert "SCAN f" not in plan, plan
