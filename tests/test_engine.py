"""The engine on real flows: synced from a real git repository into SQLite, run by the RunManager."""

from __future__ import annotations

import base64
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gitservers import free_port, serve_wsgi
from runtime import Runtime


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(tmp_path)
    yield runtime
    runtime.close()


def test_sequential_outputs_flow_between_tasks(rt: Runtime) -> None:
    rt.deploy(
        {
            "chain.yaml": """
            id: chain
            namespace: acme
            inputs:
              - id: who
                type: STRING
                defaults: world
            tasks:
              - id: first
                type: io.kestra.plugin.core.debug.Return
                format: "hello {{ inputs.who }}"
              - id: second
                type: io.kestra.plugin.core.debug.Return
                format: "{{ outputs.first.value | upper }}"
            outputs:
              - id: shout
                type: STRING
                value: "{{ outputs.second.value }}"
        """
        }
    )
    execution = rt.run("acme.chain", who="ada")
    assert execution["state"] == "SUCCESS"
    assert execution["outputs"] == {"shout": "HELLO ADA"}
    assert rt.states(execution) == {"first": "SUCCESS", "second": "SUCCESS"}


def test_failure_runs_errors_then_finally_and_skips_the_rest(rt: Runtime) -> None:
    rt.deploy(
        {
            "fails.yaml": """
            id: fails
            namespace: acme
            tasks:
              - id: boom
                type: io.kestra.plugin.core.execution.Fail
                errorMessage: broken on purpose
              - id: never
                type: io.kestra.plugin.core.log.Log
                message: not reached
            errors:
              - id: handle
                type: io.kestra.plugin.core.log.Log
                message: "handling {{ execution.id }}"
            finally:
              - id: cleanup
                type: io.kestra.plugin.core.log.Log
                message: cleaned
        """
        }
    )
    execution = rt.run("acme.fails")
    assert execution["state"] == "FAILED"
    assert rt.states(execution) == {"boom": "FAILED", "handle": "SUCCESS", "cleanup": "SUCCESS"}
    assert "task 'boom': broken on purpose" in execution["error"]
    assert "cleaned" in execution["logs"]


def test_flowables_with_nested_errors_and_finally(rt: Runtime) -> None:
    rt.deploy(
        {
            "nested.yaml": """
            id: nested
            namespace: acme
            tasks:
              - id: seq
                type: io.kestra.plugin.core.flow.Sequential
                tasks:
                  - id: branch
                    type: io.kestra.plugin.core.flow.If
                    condition: "{{ 1 + 1 == 2 }}"
                    then:
                      - id: inner_fail
                        type: io.kestra.plugin.core.execution.Fail
                    errors:
                      - id: local_error
                        type: io.kestra.plugin.core.log.Log
                        message: local handler
                    finally:
                      - id: local_finally
                        type: io.kestra.plugin.core.log.Log
                        message: local finally
                allowFailure: true
              - id: after
                type: io.kestra.plugin.core.flow.Switch
                value: "{{ 'b' }}"
                cases:
                  a:
                    - id: case_a
                      type: io.kestra.plugin.core.log.Log
                      message: a
                  b:
                    - id: case_b
                      type: io.kestra.plugin.core.debug.Return
                      format: picked b
        """
        }
    )
    execution = rt.run("acme.nested")
    states = rt.states(execution)
    assert execution["state"] == "WARNING"  # the Sequential failed, allowFailure turns it into a warning
    assert states["inner_fail"] == "FAILED"
    assert states["local_error"] == "SUCCESS" and states["local_finally"] == "SUCCESS"
    assert states["seq"] == "WARNING"  # recorded as Kestra shows it: its allowed failure is a warning
    assert states["case_b"] == "SUCCESS" and "case_a" not in states


def test_foreach_keys_outputs_by_value_and_respects_run_if(rt: Runtime) -> None:
    rt.deploy(
        {
            "loop.yaml": """
            id: loop
            namespace: acme
            tasks:
              - id: each
                type: io.kestra.plugin.core.flow.ForEach
                values: ["a", "b", "c"]
                concurrencyLimit: 2
                tasks:
                  - id: child
                    type: io.kestra.plugin.core.debug.Return
                    runIf: "{{ taskrun.value != 'b' }}"
                    format: "value {{ taskrun.value }}"
              - id: collect
                type: io.kestra.plugin.core.debug.Return
                format: "{{ outputs.child['a'].value }} / {{ outputs.child['c'].value }}"
        """
        }
    )
    execution = rt.run("acme.loop")
    assert execution["state"] == "SUCCESS"
    states = rt.states(execution)
    assert (states["child[a]"], states["child[b]"], states["child[c]"]) == ("SUCCESS", "SKIPPED", "SUCCESS")
    collect = next(r for r in execution["task_runs"] if r["task_id"] == "collect")
    assert collect["outputs"] == {"value": "value a / value c"}


def test_parallel_of_sleeps_runs_at_once(rt: Runtime) -> None:
    sleeps = "\n".join(
        f"      - id: s{i}\n        type: io.kestra.plugin.core.flow.Sleep\n        duration: PT0.5S" for i in range(20)
    )
    head = "id: par\nnamespace: acme\ntasks:\n  - id: p\n    type: io.kestra.plugin.core.flow.Parallel\n"
    rt.deploy({"par.yaml": f"{head}    tasks:\n{sleeps}\n"})
    execution = rt.run("acme.par")
    assert execution["state"] == "SUCCESS"
    starts = sorted(r["started_at"] for r in execution["task_runs"] if r["task_id"].startswith("s"))
    ends = sorted(r["ended_at"] for r in execution["task_runs"] if r["task_id"].startswith("s"))
    assert starts[-1] < ends[0]  # every sleep started before the first one ended: they overlapped


def test_retry_then_success_counts_attempts(rt: Runtime, tmp_path: Path) -> None:
    marker = tmp_path / "attempts"
    rt.deploy(
        {
            "flaky.yaml": f"""
            id: flaky
            namespace: acme
            tasks:
              - id: flaky
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands:
                  - echo x >> {marker}
                  - test $(wc -l < {marker}) -ge 3
                retry:
                  type: constant
                  interval: PT0.1S
                  maxAttempts: 4
                  warningOnRetry: true
        """
        }
    )
    execution = rt.run("acme.flaky")
    attempts = [(r["attempt"], r["state"]) for r in execution["task_runs"]]
    assert attempts == [(1, "RETRIED"), (2, "RETRIED"), (3, "WARNING")]
    assert execution["state"] == "WARNING"


def _status_app(environ: dict, start_response) -> list[bytes]:  # type: ignore[no-untyped-def,type-arg]
    """GET /status/<code> answers that code."""
    code = int(environ["PATH_INFO"].rsplit("/", 1)[1])
    start_response(f"{code} Status", [("Content-Type", "text/plain")])
    return [b"as asked"]


HTTP_TASK = """
                type: io.kestra.plugin.core.http.Request
                uri: "{url}"
"""
SHELL_TASK = """
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands:
                  - no-such-command-gitsync-test --version
"""
NOT_RETRIED = "it is not retried; add `retryPermanentErrors: true` to the task's retry to retry such errors too"


@pytest.mark.parametrize(
    ("task", "extra", "attempts"),
    [
        pytest.param(HTTP_TASK.format(url="{server}/status/404"), "", ["FAILED"], id="http 404"),
        pytest.param(HTTP_TASK.format(url="{server}/status/400"), "", ["FAILED"], id="http 400"),
        pytest.param(HTTP_TASK.format(url="{refused}"), "", ["FAILED"], id="connection refused"),
        pytest.param(SHELL_TASK, "", ["FAILED"], id="command not found"),
        pytest.param(HTTP_TASK.format(url="{server}/status/503"), "", ["RETRIED", "RETRIED", "FAILED"], id="http 503"),
        pytest.param(HTTP_TASK.format(url="{server}/status/429"), "", ["RETRIED", "RETRIED", "FAILED"], id="http 429"),
        pytest.param(HTTP_TASK.format(url="{server}/status/408"), "", ["RETRIED", "RETRIED", "FAILED"], id="http 408"),
        pytest.param(
            HTTP_TASK.format(url="{server}/status/404"),
            "retryPermanentErrors: true",
            ["RETRIED", "RETRIED", "FAILED"],
            id="http 404, retried when the retry says so",
        ),
    ],
)
def test_a_permanent_error_is_not_retried_unless_the_retry_says_so(
    rt: Runtime, task: str, extra: str, attempts: list[str]
) -> None:
    with serve_wsgi(_status_app) as server:
        body = task.format(server=server, refused=f"http://127.0.0.1:{free_port()}/orders.csv")
        rt.deploy(
            {
                "fetch.yaml": f"""
            id: fetch
            namespace: acme
            tasks:
              - id: fetch{body.rstrip()}
                retry:
                  type: constant
                  interval: PT0.1S
                  maxAttempts: 3
                  {extra}
        """
            }
        )
        execution = rt.run("acme.fetch")
    assert execution["state"] == "FAILED"
    assert [r["state"] for r in execution["task_runs"]] == attempts, execution["logs"]
    said = [line for line in execution["logs"] if "not retried" in line]
    if attempts == ["FAILED"]:
        assert said == [f"attempt 1 failed with a permanent error (trying again fails the same way), so {NOT_RETRIED}"]
    else:
        assert said == []


def test_timeout_kills_a_hanging_script_and_its_children(rt: Runtime, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    rt.deploy(
        {
            "hang.yaml": f"""
            id: hang
            namespace: acme
            tasks:
              - id: hang
                type: io.kestra.plugin.scripts.shell.Commands
                timeout: PT1S
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands:
                  - sleep 300 &
                  - echo $! > {pids}
                  - sleep 300
        """
        }
    )
    execution = rt.run("acme.hang")
    assert execution["state"] == "FAILED"
    assert "timed out" in execution["error"]
    child = int(pids.read_text().strip())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.1)
    assert not _alive(child), "the script's background child survived the timeout"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return bool(state) and not state.startswith("Z")


def test_subflow_chain_returns_flow_outputs(rt: Runtime) -> None:
    rt.deploy(
        {
            "child.yaml": """
            id: child
            namespace: acme
            inputs:
              - id: n
                type: INT
            tasks:
              - id: double
                type: io.kestra.plugin.core.debug.Return
                format: "{{ inputs.n * 2 }}"
            outputs:
              - id: result
                type: STRING
                value: "{{ outputs.double.value }}"
        """,
            "middle.yaml": """
            id: middle
            namespace: acme
            tasks:
              - id: call
                type: io.kestra.plugin.core.flow.Subflow
                namespace: acme
                flowId: child
                inputs:
                  n: 21
            outputs:
              - id: result
                type: STRING
                value: "{{ outputs.call.outputs.result }}"
        """,
            "top.yaml": """
            id: top
            namespace: acme
            tasks:
              - id: call
                type: io.kestra.plugin.core.flow.Subflow
                namespace: acme
                flowId: middle
              - id: show
                type: io.kestra.plugin.core.debug.Return
                format: "{{ outputs.call.outputs.result }}"
        """,
        }
    )
    execution = rt.run("acme.top")
    assert execution["state"] == "SUCCESS"
    show = next(r for r in execution["task_runs"] if r["task_id"] == "show")
    assert show["outputs"] == {"value": "42"}
    children = rt.store.query("SELECT flow_uid, state, parent_execution FROM executions ORDER BY id")
    assert [(c["flow_uid"], c["state"]) for c in children] == [
        ("acme.top", "SUCCESS"),
        ("acme.middle", "SUCCESS"),
        ("acme.child", "SUCCESS"),
    ]


def test_flow_trigger_starts_downstream_flow(rt: Runtime) -> None:
    rt.deploy(
        {
            "upstream.yaml": """
            id: upstream
            namespace: acme
            tasks:
              - id: work
                type: io.kestra.plugin.core.debug.Return
                format: done
            outputs:
              - id: rows
                type: INT
                value: "7"
        """,
            "downstream.yaml": """
            id: downstream
            namespace: acme
            inputs:
              - id: rows
                type: INT
            tasks:
              - id: report
                type: io.kestra.plugin.core.debug.Return
                format: "{{ trigger.flowId }} {{ trigger.state }} {{ inputs.rows }}"
            triggers:
              - id: after_upstream
                type: io.kestra.plugin.core.trigger.Flow
                inputs:
                  rows: "{{ trigger.outputs.rows }}"
                conditions:
                  - type: io.kestra.plugin.core.condition.ExecutionFlow
                    namespace: acme
                    flowId: upstream
                  - type: io.kestra.plugin.core.condition.ExecutionStatus
                    in: [SUCCESS]
        """,
        }
    )
    rt.run("acme.upstream")
    downstream = _wait_for(rt, "acme.downstream")
    report = next(r for r in downstream["task_runs"] if r["task_id"] == "report")
    assert report["outputs"] == {"value": "upstream SUCCESS 7"}


def _wait_for(rt: Runtime, uid: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = rt.store.query_one("SELECT id, state FROM executions WHERE flow_uid = ? ORDER BY id DESC", (uid,))
        if row and row["state"] in ("SUCCESS", "FAILED", "WARNING", "KILLED"):
            return rt.execution(row["id"])
        time.sleep(0.05)
    raise AssertionError(f"no finished execution of {uid}")


def test_webhook_trigger_creates_an_execution_with_the_body(rt: Runtime) -> None:
    rt.deploy(
        {
            "hook.yaml": """
            id: hook
            namespace: acme
            tasks:
              - id: echo
                type: io.kestra.plugin.core.debug.Return
                format: "{{ trigger.body.service }} from {{ trigger.parameters.env[0] }}"
            triggers:
              - id: incoming
                type: io.kestra.plugin.core.trigger.Webhook
                key: s3cret-key
        """
        }
    )
    assert rt.runs.webhook("acme", "hook", "wrong-key", {"body": {}}) is None
    execution_id = rt.runs.webhook(
        "acme", "hook", "s3cret-key", {"body": {"service": "api"}, "parameters": {"env": ["prod"]}, "headers": {}}
    )
    assert execution_id is not None
    rt.runs.wait(execution_id, timeout=20)
    execution = rt.execution(execution_id)
    echo = next(r for r in execution["task_runs"] if r["task_id"] == "echo")
    assert echo["outputs"] == {"value": "api from prod"}


def test_secrets_never_show_in_logs_outputs_or_errors(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_DB_PASSWORD", base64.b64encode(b"hunter2-very-secret").decode())
    rt.deploy(
        {
            "secret.yaml": """
            id: secret
            namespace: acme
            tasks:
              - id: leak_log
                type: io.kestra.plugin.core.log.Log
                message: "password is {{ secret('DB_PASSWORD') }}"
              - id: leak_output
                type: io.kestra.plugin.core.debug.Return
                format: "{{ secret('DB_PASSWORD') }}"
              - id: leak_error
                type: io.kestra.plugin.core.execution.Fail
                errorMessage: "failed with {{ secret('DB_PASSWORD') }}"
        """
        }
    )
    execution = rt.run("acme.secret")
    dump = (
        repr(execution) + repr(rt.store.query("SELECT * FROM logs")) + repr(rt.store.query("SELECT * FROM task_runs"))
    )
    assert "hunter2-very-secret" not in dump
    assert "password is ******" in execution["logs"]


@pytest.mark.parametrize(
    "expression",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ inputs.__class__.__base__ }}",
    ],
)
def test_sandbox_escapes_fail_the_task(rt: Runtime, expression: str) -> None:
    task = f'  - id: t\n    type: io.kestra.plugin.core.debug.Return\n    format: "{expression}"\n'
    rt.deploy({"escape.yaml": f"id: escape\nnamespace: acme\ntasks:\n{task}"})
    execution = rt.run("acme.escape")
    assert execution["state"] == "FAILED"
    assert "subclasses" not in repr(execution["task_runs"][0]["outputs"])


def test_kill_stops_a_running_execution(rt: Runtime) -> None:
    rt.deploy(
        {
            "slow.yaml": """
            id: slow
            namespace: acme
            tasks:
              - id: wait
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands:
                  - sleep 60
        """
        }
    )
    execution_id = rt.runs.create("acme.slow", {})
    rt.runs.start(execution_id)
    deadline = time.monotonic() + 10
    while rt.store.query_one("SELECT state FROM task_runs WHERE execution_id = ?", (execution_id,)) is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert rt.runs.request_kill(execution_id).value == "KILLING"
    assert rt.runs.wait(execution_id, timeout=20)
    assert rt.execution(execution_id)["state"] == "KILLED"


def test_pause_waits_for_resume(rt: Runtime) -> None:
    rt.deploy(
        {
            "approval.yaml": """
            id: approval
            namespace: acme
            tasks:
              - id: approve
                type: io.kestra.plugin.core.flow.Pause
              - id: after
                type: io.kestra.plugin.core.debug.Return
                format: "resumed by {{ outputs.approve.onResume.who }}"
        """
        }
    )
    execution_id = rt.runs.create("acme.approval", {})
    rt.runs.start(execution_id)
    deadline = time.monotonic() + 10
    while rt.runs.execution_state(execution_id) != "PAUSED":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    rt.runs.request_resume(execution_id, {"who": "ops"})
    assert rt.runs.wait(execution_id, timeout=20)
    execution = rt.execution(execution_id)
    assert execution["state"] == "SUCCESS"
    after = next(r for r in execution["task_runs"] if r["task_id"] == "after")
    assert after["outputs"] == {"value": "resumed by ops"}


def test_inputs_are_checked_before_anything_runs(rt: Runtime) -> None:
    from gitsync.executions.manager import RunError

    rt.deploy(
        {
            "typed.yaml": """
            id: typed
            namespace: acme
            inputs:
              - id: count
                type: INT
              - id: mode
                type: SELECT
                values: [fast, safe]
                defaults: safe
            tasks:
              - id: t
                type: io.kestra.plugin.core.log.Log
                message: "{{ inputs.count }}"
        """
        }
    )
    with pytest.raises(RunError, match=r"input 'count' .INT.: expected an integer, got 'many'"):
        rt.runs.create("acme.typed", {"count": "many"})
    with pytest.raises(RunError, match="input 'count' is required"):
        rt.runs.create("acme.typed", {})
    assert rt.store.query("SELECT * FROM executions") == []


def test_concurrency_limit_queues_the_second_run(rt: Runtime) -> None:
    rt.deploy(
        {
            "single.yaml": """
            id: single
            namespace: acme
            concurrency:
              limit: 1
              behavior: FAIL
            tasks:
              - id: nap
                type: io.kestra.plugin.core.flow.Sleep
                duration: PT1S
        """
        }
    )
    first = rt.runs.create("acme.single", {})
    rt.runs.start(first)
    deadline = time.monotonic() + 10
    while rt.runs.execution_state(first) != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    second = rt.runs.create("acme.single", {})
    assert rt.runs.run(second) is None
    assert rt.runs.execution_state(second) == "FAILED"
    rt.runs.wait(first, timeout=20)
    assert rt.runs.execution_state(first) == "SUCCESS"


def test_an_execution_pins_its_revision(rt: Runtime) -> None:
    flow = """
        id: pinned
        namespace: acme
        tasks:
          - id: nap
            type: io.kestra.plugin.core.flow.Sleep
            duration: PT0.5S
          - id: say
            type: io.kestra.plugin.core.debug.Return
            format: {word}
    """
    rt.deploy({"pinned.yaml": flow.format(word="first")})
    execution_id = rt.runs.create("acme.pinned", {})
    started = threading.Thread(target=rt.runs.run, args=(execution_id,))
    started.start()
    rt.deploy({"pinned.yaml": flow.format(word="second")})  # a sync while the execution runs
    started.join(timeout=20)
    execution = rt.execution(execution_id)
    say = next(r for r in execution["task_runs"] if r["task_id"] == "say")
    assert (execution["revision"], say["outputs"]) == (1, {"value": "first"})


# -- the execution's error names what ended the run (issue 10, 2) ----------------------------------------------------

FLAKY = """
  - id: flaky
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{ taskrun.attemptsCount == 0 }}"
    errorMessage: the first attempt fails
    retry:
      type: constant
      interval: PT0S
      maxAttempts: 2
"""


def _flow(flow_id: str, tasks: str) -> str:
    return f"id: {flow_id}\nnamespace: acme\ntasks:{tasks}"


def test_a_failure_that_a_retry_made_good_is_not_the_executions_error(rt: Runtime) -> None:
    rt.deploy({"flaky.yaml": _flow("flaky", FLAKY)})
    execution = rt.run("acme.flaky")
    assert [(r["attempt"], r["state"]) for r in execution["task_runs"]] == [(1, "RETRIED"), (2, "SUCCESS")]
    assert (execution["state"], execution["error"]) == ("SUCCESS", None)


def test_the_error_names_the_later_task_that_failed_not_an_earlier_retried_one(rt: Runtime) -> None:
    later = """
  - id: load
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: the warehouse refused the load
"""
    rt.deploy({"twostep.yaml": _flow("twostep", FLAKY + later)})
    execution = rt.run("acme.twostep")
    assert execution["state"] == "FAILED"
    assert execution["error"] == "task 'load': the warehouse refused the load"


def test_a_failure_allowed_by_allow_failure_is_not_the_executions_error(rt: Runtime) -> None:
    tolerated = """
  - id: optional
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: optional step failed
    allowFailure: true
"""
    later = """
  - id: load
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: the warehouse refused the load
"""
    rt.deploy({"tolerant.yaml": _flow("tolerant", tolerated), "then.yaml": _flow("then", tolerated + later)})
    tolerant = rt.run("acme.tolerant")
    assert (tolerant["state"], tolerant["error"]) == ("WARNING", None)
    then = rt.run("acme.then")
    assert (then["state"], then["error"]) == ("FAILED", "task 'load': the warehouse refused the load")


def test_a_run_queued_by_the_concurrency_limit_that_then_succeeds_has_no_error(rt: Runtime) -> None:
    rt.deploy(
        {
            "one.yaml": """
            id: one
            namespace: acme
            concurrency:
              limit: 1
              behavior: QUEUE
            tasks:
              - id: approve
                type: io.kestra.plugin.core.flow.Pause
        """
        }
    )
    first = rt.runs.create("acme.one", {})
    rt.runs.start(first)
    deadline = time.monotonic() + 20
    while rt.runs.execution_state(first) != "PAUSED":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    second = rt.runs.create("acme.one", {})
    assert rt.runs.run(second) is None
    assert rt.runs.execution_state(second) == "QUEUED"
    rt.runs.request_resume(first, {})
    assert rt.runs.wait(first, timeout=20)
    while rt.runs.execution_state(second) != "PAUSED":  # released when the first ended
        assert time.monotonic() < deadline + 20
        time.sleep(0.02)
    rt.runs.request_resume(second, {})
    assert rt.runs.wait(second, timeout=20)
    row = rt.execution(second)
    assert (row["state"], row["error"]) == ("SUCCESS", None)


def test_a_running_tasks_log_lines_are_stored_while_it_runs(rt: Runtime) -> None:
    """A worker's lines wait for the task's end row to be written with it, but never longer than a moment: a
    task that prints and then runs on has its line in the logs table (`gitsync logs --follow`) while RUNNING."""
    rt.deploy(
        {
            "chatty.yaml": """
            id: chatty
            namespace: acme
            tasks:
              - id: talk
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands:
                  - echo started the long part
                  - sleep 60
        """
        }
    )
    execution_id = rt.runs.create("acme.chatty", {})
    rt.runs.start(execution_id)
    deadline = time.monotonic() + 20
    while "started the long part" not in rt.execution(execution_id)["logs"]:
        assert time.monotonic() < deadline, "the task's line was not stored while it ran"
        time.sleep(0.05)
    assert rt.states(rt.execution(execution_id)) == {"talk": "RUNNING"}
    rt.runs.request_kill(execution_id)
    assert rt.runs.wait(execution_id, timeout=20)
    assert rt.execution(execution_id)["state"] == "KILLED"


def test_log_lines_are_stored_in_the_order_they_came_before_the_next_task_starts(rt: Runtime) -> None:
    rt.deploy(
        {
            "lines.yaml": """
            id: lines
            namespace: acme
            tasks:
              - id: many
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands:
                  - for i in $(seq 1 300); do echo "line $i"; done
                  - sleep 0.3
                  - echo "line 301"
              - id: after
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands:
                  - echo "next task"
        """
        }
    )
    execution = rt.run("acme.lines")
    assert execution["state"] == "SUCCESS"
    assert [line for line in execution["logs"] if line.startswith(("line ", "next "))] == [
        *(f"line {i}" for i in range(1, 302)),
        "next task",
    ]
    rows = rt.store.query(
        "SELECT t.task_id, count(*) AS n FROM logs l JOIN task_runs t ON t.id = l.task_run_id "
        "WHERE l.execution_id = ? GROUP BY t.task_id ORDER BY t.task_id",
        (execution["id"],),
    )
    assert {row["task_id"]: row["n"] for row in rows} == {"after": 1, "many": 301}


def test_each_task_run_works_in_a_folder_of_its_own_under_the_execution(rt: Runtime) -> None:
    rt.deploy(
        {
            "dirs.yaml": """
            id: dirs
            namespace: acme
            tasks:
              - id: one
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands:
                  - touch mine.txt
                  - echo "::{\\"outputs\\":{\\"dir\\":\\"$(pwd)\\",\\"files\\":\\"$(ls)\\"}}::"
              - id: two
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands:
                  - echo "::{\\"outputs\\":{\\"dir\\":\\"$(pwd)\\",\\"files\\":\\"$(ls)\\"}}::"
        """
        }
    )
    execution = rt.run("acme.dirs")
    assert execution["state"] == "SUCCESS"
    runs = {run["task_id"]: run for run in execution["task_runs"]}
    work = (rt.data_dir / "executions" / execution["id"] / "work").resolve()
    for task_id in ("one", "two"):
        assert Path(runs[task_id]["outputs"]["vars"]["dir"]) == work / runs[task_id]["id"]
    assert (runs["one"]["outputs"]["vars"]["files"], runs["two"]["outputs"]["vars"]["files"]) == ("mine.txt", "")


def test_parsed_revisions_are_bounded_and_an_evicted_one_is_parsed_again(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitsync.executions import creation

    monkeypatch.setattr(creation, "FLOWS_CACHED", 1)
    flow = _flow("kept", "\n  - id: say\n    type: io.kestra.plugin.core.debug.Return\n    format: {word}\n")
    rt.deploy({"kept.yaml": flow.format(word="first")})
    older = rt.runs.create("acme.kept", {})
    rt.deploy({"kept.yaml": flow.format(word="second")})
    newer = rt.runs.create("acme.kept", {})  # parses revision 2, which takes revision 1's place
    assert len(rt.runs.factory._flows) == 1
    for execution_id, word in ((older, "first"), (newer, "second")):
        rt.runs.run(execution_id)
        (say,) = rt.execution(execution_id)["task_runs"]
        assert say["outputs"] == {"value": word}
    assert len(rt.runs.factory._flows) == 1
