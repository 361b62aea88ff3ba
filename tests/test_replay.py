"""Replaying an execution from one of its task runs (Kestra's Replay), as a user does it: `gitsync replay` and
`POST /api/v1/executions/{id}/replay` on a running daemon.

A replay is a new execution of the revision the original ran, with its inputs (some given again) and labels; what
ended done before the chosen task run started is carried over with its outputs and not run again, the rest runs.
Each test proves "not run again" by a task that appends a line to a file (the ledger): one line per real run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import running_daemon
from gitservers import GitRepo
from http_attack import connect, read_response, request_head, stream_body
from runtime import Runtime, gitsync_cli

from gitsync.http.executions import MAX_BODY

API_TOKEN = "api-token-for-replay-tests"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
SHELL = "io.kestra.plugin.scripts.shell.Commands"
PROCESS = "\n    taskRunner:\n      type: io.kestra.plugin.core.runner.Process"
PROCESS_IN = PROCESS.replace("\n", "\n    ")  # a task one level in
PROCESS_IN2 = PROCESS.replace("\n", "\n        ")  # two levels in

PIPELINE = f"""
id: pipeline
namespace: acme
labels:
  team: data
inputs:
  - id: ledger
    type: STRING
  - id: target
    type: STRING
    defaults: closed
tasks:
  - id: extract
    type: {SHELL}{PROCESS}
    commands:
      - echo extracted >> '{{{{ inputs.ledger }}}}'
      - echo '::{{"outputs":{{"rows":42}}}}::'
  - id: load
    type: {SHELL}{PROCESS}
    commands:
      - test '{{{{ inputs.target }}}}' = open || {{ echo 'the target is {{{{ inputs.target }}}}'; exit 3; }}
      - echo loaded >> '{{{{ inputs.ledger }}}}'
  - id: report
    type: io.kestra.plugin.core.debug.Return
    format: "loaded {{{{ outputs.extract.vars.rows }}}} rows"
outputs:
  - id: summary
    type: STRING
    value: "{{{{ outputs.report.value }}}}"
"""

SLOW = f"""
id: slow
namespace: acme
tasks:
  - id: wait
    type: {SHELL}{PROCESS}
    commands:
      - sleep 60
"""


def _state(runtime: Runtime) -> tuple[str, str]:
    return str(runtime.tmp / "state.db"), str(runtime.data_dir)


def _deploy(tmp_path: Path, files: dict[str, str | None]) -> tuple[str, str]:
    """Commit and sync `files` into the state at `tmp_path` (again and again: each call is a new commit)."""
    runtime = Runtime(tmp_path)
    try:
        runtime.deploy(files)
    finally:
        runtime.close()
    return _state(runtime)


def _execution_id(stdout: str) -> str:
    first = stdout.splitlines()[0]
    assert first.startswith("execution "), stdout
    return first.split()[1]


def _executions(state: tuple[str, str]) -> dict[str, dict[str, Any]]:
    done = gitsync_cli(state, "executions", "--format", "json")
    assert done.returncode == 0, done.stderr
    return {row["id"]: row for row in json.loads(done.stdout)}


def _runs(execution: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {run["task_id"] + (f"[{run['value']}]" if run["value"] else ""): run for run in execution["task_runs"]}


def _wait(condition: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


@pytest.fixture
def failed(tmp_path: Path) -> tuple[tuple[str, str], str, Path]:
    """The state, a failed execution of acme.pipeline (`load` failed: its target is closed), and its ledger."""
    state = _deploy(tmp_path, {"pipeline.yaml": PIPELINE, "slow.yaml": SLOW})
    ledger = tmp_path / "ledger.txt"
    done = gitsync_cli(state, "run", "acme.pipeline", "--input", f"ledger={ledger}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the target is closed" in done.stdout
    assert ledger.read_text(encoding="utf-8").splitlines() == ["extracted"]
    return state, _execution_id(done.stdout), ledger


# -- the command line --------------------------------------------------------------------------------------------


def test_a_replay_from_the_failed_task_keeps_what_ran_before_it_and_runs_the_rest(
    failed: tuple[tuple[str, str], str, Path],
) -> None:
    state, original, ledger = failed
    done = gitsync_cli(state, "replay", original, "--task", "load", "--input", "target=open")
    assert done.returncode == 0, done.stdout + done.stderr
    replay = _execution_id(done.stdout)
    assert f"replays execution {original} of acme.pipeline (revision 1) from task 'load'" in done.stdout
    assert f"info: carried over from execution {original}: not run again (it ended SUCCESS there" in done.stdout
    assert "ok load" in done.stdout and "ok report" in done.stdout
    assert "loaded 42 rows" in done.stdout and "SUCCESS" in done.stdout
    # extract ran once (the original's run), load once (the replay's)
    assert ledger.read_text(encoding="utf-8").splitlines() == ["extracted", "loaded"]

    rows = _executions(state)
    new, old = rows[replay], rows[original]
    assert (new["state"], new["trigger_kind"], new["replay_of"], new["revision"]) == ("SUCCESS", "replay", original, 1)
    assert new["outputs"] == {"summary": "loaded 42 rows"}
    assert new["inputs"] == {"ledger": str(ledger), "target": "open"}
    assert new["labels"]["team"] == "data" and new["labels"]["system.replayOf"] == original
    assert new["labels"]["system.correlationId"] == original  # the replay belongs to the original's chain
    runs = _runs(new)
    assert {task: run["state"] for task, run in runs.items()} == {
        "extract": "SUCCESS",
        "load": "SUCCESS",
        "report": "SUCCESS",
    }
    assert runs["extract"]["outputs"]["vars"] == {"rows": 42}  # carried over with its outputs
    assert runs["extract"]["started_at"] == _runs(old)["extract"]["started_at"]  # when it really ran
    assert old["state"] == "FAILED" and _runs(old)["load"]["state"] == "FAILED"  # the original is left as it was

    logs = gitsync_cli(state, "logs", replay)
    assert f"replay of execution {original} from task 'load'; carried over, not run again: extract" in logs.stdout
    assert f"extract: carried over from execution {original}: not run again" in logs.stdout


def test_a_replay_runs_the_revision_the_execution_ran_even_after_the_flow_changed(
    failed: tuple[tuple[str, str], str, Path], tmp_path: Path
) -> None:
    state, original, ledger = failed
    changed = PIPELINE.replace('format: "loaded', 'format: "v2 loaded')
    _deploy(tmp_path, {"pipeline.yaml": changed})
    flows = gitsync_cli(state, "flows", "--format", "json")
    assert [row["revision"] for row in json.loads(flows.stdout) if row["uid"] == "acme.pipeline"] == [2]

    done = gitsync_cli(state, "replay", original, "--task", "load", "--input", "target=open")
    assert done.returncode == 0, done.stdout + done.stderr
    new = _executions(state)[_execution_id(done.stdout)]
    assert new["revision"] == 1 and new["commit"] == _executions(state)[original]["commit"]
    assert new["outputs"] == {"summary": "loaded 42 rows"}  # revision 1's report, not revision 2's

    fresh = gitsync_cli(state, "run", "acme.pipeline", "--input", f"ledger={ledger}", "--input", "target=open")
    assert fresh.returncode == 0 and "v2 loaded 42 rows" in fresh.stdout  # a new run takes revision 2


def test_a_replay_from_an_unknown_task_is_refused_and_names_the_tasks_that_ran(
    failed: tuple[tuple[str, str], str, Path],
) -> None:
    state, original, _ = failed
    unknown = gitsync_cli(state, "replay", original, "--task", "lode")
    assert unknown.returncode == 1, unknown.stdout + unknown.stderr
    assert "flow acme.pipeline (revision 1) has no task 'lode'" in unknown.stderr
    assert f"the tasks that ran in execution {original}: extract, load" in unknown.stderr
    not_run = gitsync_cli(state, "replay", original, "--task", "report")
    assert not_run.returncode == 1
    assert f"task 'report' did not run in execution {original}, so no replay can start from it" in not_run.stderr
    assert "Traceback" not in unknown.stderr + not_run.stderr
    assert list(_executions(state)) == [original]  # nothing was created


def test_a_replay_of_an_unknown_execution_is_a_usage_error(failed: tuple[tuple[str, str], str, Path]) -> None:
    state, _, _ = failed
    done = gitsync_cli(state, "replay", "nope", "--task", "load")
    assert done.returncode == 2
    assert "no execution 'nope' in the state; `gitsync executions` lists them" in done.stderr


def test_a_running_execution_is_not_replayed(failed: tuple[tuple[str, str], str, Path]) -> None:
    state, _, _ = failed
    db, data = state
    runner = subprocess.Popen(
        [sys.executable, "-m", "gitsync", "run", "acme.slow", "--db", db, "--data-dir", data],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        slow = _wait(lambda: [e for e in _executions(state).values() if e["flow"] == "acme.slow" and e["task_runs"]])
        running = slow[0]["id"]
        done = gitsync_cli(state, "replay", running, "--task", "wait")
        killed = gitsync_cli(state, "kill", running)
        assert killed.returncode == 0, killed.stderr
        assert runner.wait(timeout=60) == 1
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert done.returncode == 1
    assert f"execution {running} is RUNNING: only an execution that has ended can be replayed" in done.stderr
    assert f"gitsync kill {running}" in done.stderr
    assert len(_executions(state)) == 2  # nothing was created


def test_a_replay_of_a_flow_removed_from_git_is_refused(
    failed: tuple[tuple[str, str], str, Path], tmp_path: Path
) -> None:
    state, original, _ = failed
    _deploy(tmp_path, {"pipeline.yaml": None})
    done = gitsync_cli(state, "replay", original, "--task", "load")
    assert done.returncode == 1
    assert "flow acme.pipeline is no longer synced (its file was removed from git)" in done.stderr
    assert "revision 1 cannot be replayed" in done.stderr


# -- flowables: what "before" means inside Parallel, ForEach and WorkingDirectory --------------------------------

LOOP = f"""
id: loop
namespace: acme
inputs:
  - id: ledger
    type: STRING
  - id: fixed
    type: STRING
    defaults: "no"
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b", "c"]
    tasks:
      - id: fetch
        type: {SHELL}{PROCESS_IN}
        commands:
          - echo 'fetch {{{{ taskrun.value }}}}' >> '{{{{ inputs.ledger }}}}'
          - echo '::{{"outputs":{{"got":"{{{{ taskrun.value }}}}"}}}}::'
      - id: check
        type: {SHELL}{PROCESS_IN}
        commands:
          - test '{{{{ taskrun.value }}}}' != b || test '{{{{ inputs.fixed }}}}' = yes
  - id: sum
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.fetch.a.vars.got }}}}{{{{ outputs.fetch.b.vars.got }}}}{{{{ outputs.fetch.c.vars.got }}}}"
"""

BEFORE = f"""
id: before
namespace: acme
inputs:
  - id: ledger
    type: STRING
  - id: fixed
    type: STRING
    defaults: "no"
tasks:
  - id: prepare
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: each
        type: io.kestra.plugin.core.flow.ForEach
        values: ["x", "y"]
        tasks:
          - id: part
            type: {SHELL}{PROCESS_IN2}
            commands:
              - echo 'part {{{{ taskrun.value }}}}' >> '{{{{ inputs.ledger }}}}'
              - echo '::{{"outputs":{{"got":"{{{{ taskrun.value }}}}!"}}}}::'
  - id: gate
    type: {SHELL}{PROCESS}
    commands:
      - test '{{{{ inputs.fixed }}}}' = yes
  - id: join
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.part.x.vars.got }}}}{{{{ outputs.part.y.vars.got }}}}"
"""

WORKDIR = f"""
id: workdir
namespace: acme
inputs:
  - id: ledger
    type: STRING
  - id: fixed
    type: STRING
    defaults: "no"
tasks:
  - id: shared
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: write
        type: {SHELL}{PROCESS_IN}
        commands:
          - echo write >> '{{{{ inputs.ledger }}}}'
          - echo made > marker.txt
      - id: read
        type: {SHELL}{PROCESS_IN}
        commands:
          - cat marker.txt
          - test '{{{{ inputs.fixed }}}}' = yes
"""


@pytest.fixture
def runtime(tmp_path: Path) -> Any:
    rt = Runtime(tmp_path)
    rt.deploy({"loop.yaml": LOOP, "before.yaml": BEFORE, "workdir.yaml": WORKDIR})
    yield rt
    rt.close()


def _failed_run(runtime: Runtime, uid: str, ledger: Path) -> dict[str, Any]:
    execution = runtime.run(uid, ledger=str(ledger))
    assert execution["state"] == "FAILED", runtime.states(execution)
    return execution


def test_a_replay_inside_a_foreach_keeps_the_iterations_before_the_chosen_run(runtime: Runtime, tmp_path: Path) -> None:
    ledger = tmp_path / "loop.txt"
    original = _failed_run(runtime, "acme.loop", ledger)
    assert runtime.states(original) == {"each": "FAILED", "fetch[a]": "SUCCESS", "check[a]": "SUCCESS",
                                        "fetch[b]": "SUCCESS", "check[b]": "FAILED"}  # fmt: skip
    chosen = next(r["id"] for r in original["task_runs"] if (r["task_id"], r["value"]) == ("check", "b"))
    replay = runtime.runs.replay(original["id"], task_run_id=chosen, inputs={"fixed": "yes"})
    runtime.runs.run(replay)
    new = runtime.execution(replay)
    assert new["state"] == "SUCCESS", runtime.states(new)
    assert runtime.states(new) == {"each": "SUCCESS", "fetch[a]": "SUCCESS", "check[a]": "SUCCESS",
                                   "fetch[b]": "SUCCESS", "check[b]": "SUCCESS", "fetch[c]": "SUCCESS",
                                   "check[c]": "SUCCESS", "sum": "SUCCESS"}  # fmt: skip
    # a and b were fetched by the original, c by the replay: nothing fetched twice
    assert ledger.read_text(encoding="utf-8").splitlines() == ["fetch a", "fetch b", "fetch c"]
    assert _runs(new)["sum"]["outputs"] == {"value": "abc"}  # the carried iterations' outputs, under their values
    each = _runs(new)["each"]
    assert all(r["parent_id"] == each["id"] for r in new["task_runs"] if r["task_id"] in ("fetch", "check"))


def test_a_flowable_that_ended_before_the_chosen_task_is_carried_whole_with_its_outputs(
    runtime: Runtime, tmp_path: Path
) -> None:
    ledger = tmp_path / "before.txt"
    original = _failed_run(runtime, "acme.before", ledger)
    replay = runtime.runs.replay(original["id"], "gate", inputs={"fixed": "yes"})
    runtime.runs.run(replay)
    new = runtime.execution(replay)
    assert new["state"] == "SUCCESS", runtime.states(new)
    assert sorted(ledger.read_text(encoding="utf-8").splitlines()) == ["part x", "part y"]  # not run again
    assert _runs(new)["join"]["outputs"] == {"value": "x!y!"}
    carried = {k: r["state"] for k, r in _runs(new).items() if k not in ("gate", "join")}
    assert carried == {"prepare": "SUCCESS", "each": "SUCCESS", "part[x]": "SUCCESS", "part[y]": "SUCCESS"}


def test_a_working_directory_runs_again_whole_when_a_task_inside_it_is_replayed(
    runtime: Runtime, tmp_path: Path
) -> None:
    ledger = tmp_path / "workdir.txt"
    original = _failed_run(runtime, "acme.workdir", ledger)
    replay = runtime.runs.replay(original["id"], "read", inputs={"fixed": "yes"})
    runtime.runs.run(replay)
    new = runtime.execution(replay)
    # its tasks share the files they leave in the folder, so `write` runs again for `read` to find marker.txt
    assert new["state"] == "SUCCESS", runtime.states(new)
    assert ledger.read_text(encoding="utf-8").splitlines() == ["write", "write"]


# -- the HTTP API of a running daemon ----------------------------------------------------------------------------


def test_the_api_replays_an_execution_from_a_task(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"flows/pipeline.yaml": textwrap.dedent(PIPELINE), "flows/slow.yaml": textwrap.dedent(SLOW)})
    source = {"name": "main", "repo": str(repo.path), "branch": "main", "path": "flows", "poll": "1h"}
    ledger = tmp_path / "ledger.txt"
    with running_daemon(tmp_path / "daemon", [source], env={"GITSYNC_API_TOKEN": API_TOKEN}) as daemon:
        daemon.wait_for(lambda: "acme.pipeline" in daemon.flow_uids(), "the flow is applied")

        def ended(execution_id: str) -> str | None:
            rows = daemon.query("SELECT state, ended_at FROM executions WHERE id = ?", (execution_id,))
            return rows[0]["state"] if rows and rows[0]["ended_at"] else None

        created = daemon.post("/api/v1/executions/acme/pipeline", json={"ledger": str(ledger)}, headers=AUTH)
        assert created.status_code == 201, created.text
        original = created.json()["id"]
        assert daemon.wait_for(lambda: ended(original), "the run ends", 90) == "FAILED"

        path = f"/api/v1/executions/{original}/replay"
        body = {"task_id": "load", "inputs": {"target": "open"}}
        anonymous = daemon.post(path, json=body)
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"
        answer = daemon.post(path, json=body, headers=AUTH)
        assert answer.status_code == 202, answer.text
        replay = answer.json()["id"]
        assert answer.json()["replay_of"] == original and replay != original
        assert daemon.wait_for(lambda: ended(replay), "the replay ends", 90) == "SUCCESS"
        assert ledger.read_text(encoding="utf-8").splitlines() == ["extracted", "loaded"]
        (row,) = daemon.query("SELECT trigger_kind, replay_of, outputs FROM executions WHERE id = ?", (replay,))
        assert (row["trigger_kind"], row["replay_of"]) == ("replay", original)
        assert json.loads(row["outputs"]) == {"summary": "loaded 42 rows"}
        shown = daemon.api(f"/api/v1/executions/{replay}")
        assert (shown["trigger_kind"], shown["replay_of"]) == ("replay", original)
        assert f"/executions/{original}" in daemon.get(f"/executions/{replay}").text  # the page links back

        unknown = daemon.post(path, json={"task_id": "lode"}, headers=AUTH)
        assert unknown.status_code == 422
        assert unknown.headers["content-type"] == "application/problem+json"
        assert "has no task 'lode'" in unknown.json()["detail"]
        missing = daemon.post("/api/v1/executions/nope/replay", json={"task_id": "load"}, headers=AUTH)
        assert missing.status_code == 404 and "no execution 'nope'" in missing.json()["detail"]
        for bad in (b"[1]", b'{"inputs": {}}', b'{"task_id": "load", "task": 1}', b"{"):
            refused = daemon.post(path, content=bad, headers={**AUTH, "content-type": "application/json"})
            assert refused.status_code == 400, (bad, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
        with connect(daemon.port) as sock:  # a body over the bound: refused while it streams
            head = {**AUTH, "Content-Type": "application/json", "Content-Length": str(MAX_BODY + 1)}
            sock.sendall(request_head("POST", path, daemon.port, head))
            stream_body(sock, MAX_BODY + 1, b"x" * 65536)
            assert read_response(sock)[0] == 413

        slow = daemon.post("/api/v1/executions/acme/slow", json={}, headers=AUTH).json()["id"]
        daemon.wait_for(lambda: daemon.query("SELECT 1 FROM task_runs WHERE execution_id = ?", (slow,)), "it runs")
        busy = daemon.post(f"/api/v1/executions/{slow}/replay", json={"task_id": "wait"}, headers=AUTH)
        assert busy.status_code == 409
        assert "only an execution that has ended can be replayed" in busy.json()["detail"]
        daemon.post(f"/api/v1/executions/{slow}/kill", headers=AUTH)
        daemon.wait_for(lambda: ended(slow), "the slow run is killed", 90)
        assert len(daemon.query("SELECT id FROM executions")) == 3  # the refusals created nothing
