"""The execution commands as a user runs them: `gitsync run`, `executions`, `logs`, `kill`, `resume`."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runtime import deployed_state, gitsync_cli, read_until

FLOWS = {
    "greet.yaml": """
        id: greet
        namespace: acme
        inputs:
          - id: who
            type: STRING
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: "hello {{ inputs.who }}"
          - id: answer
            type: io.kestra.plugin.core.debug.Return
            format: "{{ inputs.who | upper }}"
        outputs:
          - id: shout
            type: STRING
            value: "{{ outputs.answer.value }}"
    """,
    "broken.yaml": """
        id: broken
        namespace: acme
        tasks:
          - id: boom
            type: io.kestra.plugin.core.execution.Fail
            errorMessage: on purpose
    """,
    "slow.yaml": """
        id: slow
        namespace: acme
        tasks:
          - id: tick
            type: io.kestra.plugin.scripts.shell.Commands
            taskRunner:
              type: io.kestra.plugin.core.runner.Process
            commands:
              - for i in 1 2 3; do echo "tick $i"; sleep 0.3; done
          - id: wait
            type: io.kestra.plugin.scripts.shell.Commands
            taskRunner:
              type: io.kestra.plugin.core.runner.Process
            commands:
              - sleep 60
    """,
    "approval.yaml": """
        id: approval
        namespace: acme
        tasks:
          - id: ask
            type: io.kestra.plugin.core.flow.Pause
          - id: done
            type: io.kestra.plugin.core.debug.Return
            format: "approved by {{ outputs.ask.onResume.by }}"
    """,
}


@pytest.fixture
def state(tmp_path: Path) -> tuple[str, str]:
    return deployed_state(tmp_path, FLOWS)


def gitsync(state: tuple[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return gitsync_cli(state, *args)


def spawn(state: tuple[str, str], *args: str) -> subprocess.Popen[str]:
    db, data = state
    return subprocess.Popen(
        [sys.executable, "-m", "gitsync", *args, "--db", db, "--data-dir", data],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def executions(state: tuple[str, str], flow: str) -> list[dict]:
    done = gitsync(state, "executions", "--flow", flow, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_run_shows_progress_and_outputs_and_exits_zero(state: tuple[str, str]) -> None:
    done = gitsync(state, "run", "acme.greet", "--input", "who=ada")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "info: hello ada" in done.stdout
    assert "ok hello" in done.stdout and "ok answer" in done.stdout
    assert '"shout": "ADA"' in done.stdout
    (execution,) = executions(state, "acme.greet")
    assert execution["state"] == "SUCCESS"
    assert execution["inputs"] == {"who": "ada"} and execution["outputs"] == {"shout": "ADA"}
    assert [(t["task_id"], t["attempt"], t["state"]) for t in execution["task_runs"]] == [
        ("hello", 1, "SUCCESS"),
        ("answer", 1, "SUCCESS"),
    ]
    for key in ("id", "flow", "revision", "commit", "trigger", "scheduled_at", "started_at", "ended_at"):
        assert key in execution
    assert execution["started_at"].endswith("+00:00")


def test_a_failed_run_exits_one_and_says_why(state: tuple[str, str]) -> None:
    done = gitsync(state, "run", "acme.broken")
    assert done.returncode == 1
    assert "FAILED: task 'boom': on purpose" in done.stdout


def test_bad_inputs_are_refused_before_anything_runs(state: tuple[str, str]) -> None:
    done = gitsync(state, "run", "acme.greet")
    assert done.returncode == 1
    assert "input 'who' is required" in done.stderr
    assert executions(state, "acme.greet") == []


def test_run_file_runs_a_flow_that_is_not_synced(state: tuple[str, str], tmp_path: Path) -> None:
    draft = tmp_path / "draft.yaml"
    draft.write_text(
        "id: draft\nnamespace: acme\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n"
        "    format: drafted\n"
    )
    done = gitsync(state, "run", "--file", str(draft))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "acme.draft (from" in done.stdout and "SUCCESS" in done.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nnamespace: acme\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Retrun\n")
    done = gitsync(state, "run", "--file", str(bad))
    assert done.returncode == 1
    assert f"{bad}:5:5" in done.stderr and "did you mean io.kestra.plugin.core.debug.Return" in done.stderr


def test_logs_follow_a_running_execution_then_kill_it_from_another_process(state: tuple[str, str]) -> None:
    runner = spawn(state, "run", "acme.slow")
    try:
        wait_for(lambda: len(executions(state, "acme.slow")) == 1)
        execution_id = executions(state, "acme.slow")[0]["id"]
        follower = spawn(state, "logs", execution_id, "--follow")
        wait_for(lambda: any(t["task_id"] == "wait" for t in executions(state, "acme.slow")[0]["task_runs"]))
        killed = gitsync(state, "kill", execution_id)
        assert killed.returncode == 0 and "KILLING" in killed.stdout
        assert runner.wait(timeout=60) == 1
        followed = follower.communicate(timeout=60)[0]
    finally:
        if runner.poll() is None:
            runner.kill()
    assert "tick 1" in followed and "tick 3" in followed
    (execution,) = executions(state, "acme.slow")
    assert execution["state"] == "KILLED"
    again = gitsync(state, "kill", execution_id)
    assert again.returncode == 1 and "already ended (KILLED)" in again.stderr


def test_resume_a_paused_execution_from_another_process(state: tuple[str, str]) -> None:
    runner = spawn(state, "run", "acme.approval")
    try:
        wait_for(lambda: [e["state"] for e in executions(state, "acme.approval")] == ["PAUSED"])
        execution_id = executions(state, "acme.approval")[0]["id"]
        resumed = gitsync(state, "resume", execution_id, "--input", "by=ops")
        assert resumed.returncode == 0, resumed.stderr
        assert runner.wait(timeout=60) == 0
        output = runner.communicate()[0]
    finally:
        if runner.poll() is None:
            runner.kill()
    assert "SUCCESS" in output
    (execution,) = executions(state, "acme.approval")
    done = next(t for t in execution["task_runs"] if t["task_id"] == "done")
    assert done["outputs"] == {"value": "approved by ops"}


@pytest.mark.parametrize("command", ["logs", "kill", "resume"])
def test_an_unknown_execution_is_a_usage_error(state: tuple[str, str], command: str) -> None:
    done = gitsync(state, command, "nope")
    assert done.returncode == 2, done.stderr
    assert "no execution 'nope' in the state; `gitsync executions` lists them" in done.stderr
    assert "Traceback" not in done.stderr


def _pasted(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A command line as a user pastes it into another terminal (`gitsync` found on PATH, another folder)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    cwd.mkdir(exist_ok=True)
    return subprocess.run(shlex.split(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_a_paused_run_names_the_task_and_prints_the_resume_command_to_paste(
    state: tuple[str, str], tmp_path: Path
) -> None:
    runner = spawn(state, "run", "acme.approval")
    try:
        paused = read_until(runner, "gitsync resume", timeout=60)
        command = paused.splitlines()[-1].strip()
        execution_id = executions(state, "acme.approval")[0]["id"]
        db, data = state
        assert command == f"gitsync resume {execution_id} --db {db} --data-dir {data}"
        assert f"execution {execution_id} is paused by task 'ask' (Pause)" in paused
        resumed = _pasted(f"{command} --input by=ops", tmp_path / "another-terminal")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        rest = read_until(runner, "SUCCESS", timeout=60)
        assert runner.wait(timeout=60) == 0
    finally:
        if runner.poll() is None:
            runner.kill()
    assert rest.startswith(f"execution {execution_id} resumed\n"), rest


def test_the_resume_command_of_a_run_on_the_default_state_has_no_flags(state: tuple[str, str], tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    db, data = state
    for suffix in ("", "-wal", "-shm"):
        if Path(db + suffix).exists():
            Path(db + suffix).rename(work / f"gitsync.db{suffix}")
    Path(data).rename(work / ".gitsync")
    runner = subprocess.Popen(
        [sys.executable, "-m", "gitsync", "run", "acme.approval", "--quiet"],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        command = read_until(runner, "gitsync resume", timeout=60).splitlines()[-1].strip()
        assert re.fullmatch(r"gitsync resume \S+", command), command
        resumed = _pasted(f"{command} --input by=ops", work)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        read_until(runner, "SUCCESS", timeout=60)
        assert runner.wait(timeout=60) == 0
    finally:
        if runner.poll() is None:
            runner.kill()


def test_executions_text_has_a_header_and_aligned_columns(state: tuple[str, str]) -> None:
    assert gitsync(state, "run", "acme.greet", "--input", "who=ada").returncode == 0
    assert gitsync(state, "run", "acme.broken").returncode == 1
    done = gitsync(state, "executions")
    assert done.returncode == 0, done.stderr
    header, *lines = done.stdout.splitlines()
    names = ["ID", "FLOW", "REVISION", "STATE", "DURATION", "TRIGGER", "CREATED"]
    assert header.split() == names
    starts = [header.index(name) for name in names]
    ends = [*starts[1:], None]
    rows = []
    for line in lines:  # every value starts in its column, after a blank
        assert all(line[start - 1] == " " != line[start] for start in starts[1:]), line
        rows.append({name: line[a:b].strip() for name, a, b in zip(names, starts, ends, strict=True)})
    broken, greet = rows  # newest first
    assert (greet["FLOW"], greet["REVISION"], greet["STATE"], greet["TRIGGER"]) == (
        "acme.greet",
        "1",
        "SUCCESS",
        "manual",
    )
    assert (broken["FLOW"], broken["STATE"], broken["TRIGGER"]) == ("acme.broken", "FAILED", "manual")
    assert greet["DURATION"].endswith("s") and greet["CREATED"].endswith("+00:00")


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    monkeypatch.delenv("GITSYNC_DB", raising=False)
    os.environ.pop("GITSYNC_DATA_DIR", None)
