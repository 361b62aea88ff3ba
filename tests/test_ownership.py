"""Every execution has one owner: `gitsync run` and the daemon share a database without touching each other's
runs; Ctrl-C kills a run; a crashed run is resolved by another process within its lease; one daemon per database.

Everything here is a real process on a real SQLite file: `gitsync run`, `gitsync daemon`, `gitsync kill`, signals
sent with os.kill, task processes found in /proc.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import query_db, start_daemon, write_config
from gitservers import GitRepo, free_port

LEASE = "2"
"""GITSYNC_LEASE_SECONDS for these processes: a frozen owner counts as gone after 2 s."""


def sleeper() -> str:
    """A `sleep` no other test runs, so /proc tells whether it is still there."""
    return f"300.{random.randrange(10**6):06d}"


def sleeping(duration: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[:2] == [b"sleep", duration.encode()]:
                pids.append(int(entry.name))
    return pids


def kill_leftovers(duration: str) -> None:
    """The task's process group, which a SIGKILLed `gitsync run` could not stop."""
    for pid in sleeping(duration):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Shared:
    """A repository of flows, synced into a database that `gitsync run`, `gitsync kill` and daemons share."""

    def __init__(self, tmp_path: Path, flows: dict[str, str]) -> None:
        self.dir = tmp_path / "state"
        self.dir.mkdir()
        self.repo = GitRepo(tmp_path / "repo")
        self.repo.commit({f"flows/{name}": textwrap.dedent(text) for name, text in flows.items()})
        self.sources = [{"name": "main", "repo": str(self.repo.path), "branch": "main", "path": "flows", "poll": "1h"}]
        self.config = write_config(self.dir, self.sources, free_port())
        self.db = self.dir / "gitsync.db"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GITSYNC_")}
        self.env.update({"GITSYNC_LEASE_SECONDS": LEASE, "PYTHONUNBUFFERED": "1"})
        synced = self.cli("sync")
        assert synced.returncode == 0, synced.stdout + synced.stderr

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gitsync", *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
        )

    def start_run(self, uid: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "gitsync", "run", uid, *args, "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
        )

    def daemon(self, **kwargs: Any) -> Any:
        return start_daemon(self.dir, self.sources, env={"GITSYNC_LEASE_SECONDS": LEASE}, **kwargs)

    def another_daemon(self, directory: Path, port: int) -> subprocess.CompletedProcess[str]:
        """`gitsync daemon` on this database from a config of its own (its own data folder and port), run to its
        end: it must refuse to start, so the timeout only catches one that does not."""
        directory.mkdir()
        config = write_config(directory, self.sources, port, db=self.db)
        return subprocess.run(
            [sys.executable, "-m", "gitsync", "daemon", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env,
        )

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return query_db(self.db, sql, params)

    def execution(self) -> dict[str, Any]:
        (row,) = self.query("SELECT id, flow_uid, state, error, owner FROM executions ORDER BY id LIMIT 1")
        return row

    def task_state(self, task_id: str) -> str | None:
        rows = self.query("SELECT state FROM task_runs WHERE task_id = ? ORDER BY id DESC LIMIT 1", (task_id,))
        return rows[0]["state"] if rows else None


def slow_flow(duration: str, flow_id: str = "slow") -> str:
    return f"""
    id: {flow_id}
    namespace: acme
    tasks:
      - id: first
        type: io.kestra.plugin.core.debug.Return
        format: started
      - id: long
        type: io.kestra.plugin.scripts.shell.Commands
        taskRunner:
          type: io.kestra.plugin.core.runner.Process
        commands:
          - sleep {duration}
    """


PAUSING = """
id: pausing
namespace: acme
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: resumed
"""


# -- the daemon beside a live `gitsync run` ---------------------------------------------------------------------


def test_a_daemon_started_beside_a_cli_run_leaves_it_running_and_it_ends_success(tmp_path: Path) -> None:
    shared = Shared(
        tmp_path,
        {
            "slowish.yaml": """
            id: slowish
            namespace: acme
            tasks:
              - id: wait
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands:
                  - while [ ! -e "$GO" ]; do sleep 0.05; done
                env:
                  GO: "{{ envs.go }}"
            """
        },
    )
    go = tmp_path / "go"
    shared.env["ENV_GO"] = str(go)
    run = shared.start_run("acme.slowish")
    try:
        wait_until(lambda: shared.task_state("wait") == "RUNNING", "the CLI run's task to start")
        daemon = shared.daemon()
        try:
            daemon.wait_for(lambda: "acme.slowish" in daemon.flow_uids(), "the daemon to be up")
            time.sleep(1.0)  # the daemon's start and a few of its sweeps pass while the CLI run goes on
            assert shared.execution()["state"] == "RUNNING"
            assert shared.execution()["error"] is None
            go.touch()
            out, _ = run.communicate(timeout=60)
            assert run.returncode == 0, out
            assert "SUCCESS" in out
        finally:
            daemon.stop()
    finally:
        if run.poll() is None:
            run.kill()
    execution = shared.execution()
    assert (execution["state"], execution["error"]) == ("SUCCESS", None)
    # no failure was ever queued for it: the daemon did not call it lost
    assert shared.query("SELECT state FROM outbox WHERE state = 'failure'") == []
    assert "resolved" not in daemon.log_tail(200)


def test_a_second_daemon_on_the_same_database_exits_and_changes_nothing(tmp_path: Path) -> None:
    shared = Shared(tmp_path, {"slow.yaml": slow_flow(sleeper())})
    first = shared.daemon()
    try:
        first.wait_for(lambda: "acme.slow" in first.flow_uids(), "the first daemon to be up")

        def snapshot() -> dict[str, list[dict[str, Any]]]:
            tables = [r["name"] for r in shared.query("SELECT name FROM sqlite_master WHERE type = 'table'")]
            out = {t: shared.query(f"SELECT * FROM {t}") for t in tables if t != "owners"}
            out["owners"] = shared.query("SELECT id, kind, pid, label FROM owners")  # heartbeats go on
            return out

        before = snapshot()
        second = shared.another_daemon(tmp_path / "second", free_port())
        assert second.returncode != 0
        assert "another gitsync daemon owns this database" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        assert snapshot() == before
        assert first.alive() and first.health().status_code == 200
    finally:
        first.stop()


def test_a_daemon_whose_port_is_taken_exits_before_it_changes_anything(tmp_path: Path) -> None:
    shared = Shared(tmp_path, {"slow.yaml": slow_flow(sleeper())})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = shared.another_daemon(tmp_path / "other", port)
    assert daemon.returncode != 0
    assert f"http.listen 127.0.0.1:{port}: the port is already in use" in daemon.stderr
    assert "Traceback" not in daemon.stderr
    assert shared.query("SELECT * FROM owners") == []
    assert shared.query("SELECT count(*) AS n FROM syncs")[0]["n"] == 1  # the CLI's sync only


# -- Ctrl-C and SIGTERM on `gitsync run` ------------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_kills_the_run_its_task_processes_and_exits_128_plus_the_signal(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    duration = sleeper()
    shared = Shared(tmp_path, {"slow.yaml": slow_flow(duration)})
    run = shared.start_run("acme.slow")
    try:
        wait_until(lambda: sleeping(duration), "the task's sleep to start")
        sent = time.monotonic()
        run.send_signal(sig)
        out, _ = run.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == code, out
    assert took < 5, f"exited {took:.1f}s after the signal"
    assert f"{sig.name}: killing execution" in out
    assert "KILLED" in out
    assert sleeping(duration) == []
    execution = shared.execution()
    assert execution["state"] == "KILLED"
    assert shared.task_state("long") == "KILLED"
    assert shared.query("SELECT * FROM owners") == []  # the lease was given back


def test_a_second_ctrl_c_exits_at_once_and_leaves_no_task_process(tmp_path: Path) -> None:
    duration = sleeper()
    shared = Shared(
        tmp_path,
        {
            "stubborn.yaml": f"""
            id: stubborn
            namespace: acme
            tasks:
              - id: long
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands:
                  - trap '' TERM; sleep {duration}
            """
        },
    )
    run = shared.start_run("acme.stubborn")
    try:
        wait_until(lambda: sleeping(duration), "the task's sleep to start")
        run.send_signal(signal.SIGINT)
        time.sleep(0.5)  # the first one is being handled: its SIGTERM is ignored by the task
        assert run.poll() is None
        sent = time.monotonic()
        run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, out
    assert took < 5, f"exited {took:.1f}s after the second Ctrl-C"  # at once; the bound allows a loaded machine
    assert "stopped at once on a second signal" in out
    wait_until(lambda: not sleeping(duration), "the sleep to be gone", timeout=5)
    assert shared.execution()["state"] == "KILLED"


def test_ctrl_c_during_a_pause_kills_the_paused_run(tmp_path: Path) -> None:
    shared = Shared(tmp_path, {"pausing.yaml": PAUSING})
    run = shared.start_run("acme.pausing")
    try:
        wait_until(lambda: shared.query("SELECT 1 FROM executions WHERE state = 'PAUSED'"), "the run to pause")
        sent = time.monotonic()
        run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, out
    assert took < 5
    assert shared.execution()["state"] == "KILLED"


# -- a run whose process died ------------------------------------------------------------------------------------


def test_a_sigkilled_run_is_resolved_by_a_daemon_and_its_status_says_who_was_lost(tmp_path: Path) -> None:
    duration = sleeper()
    shared = Shared(tmp_path, {"slow.yaml": slow_flow(duration)})
    run = shared.start_run("acme.slow")
    wait_until(lambda: sleeping(duration), "the task's sleep to start")
    run.kill()  # the CLI process only: a crash; its task's process group lives on
    run.wait(timeout=10)
    kill_leftovers(duration)
    assert shared.execution()["state"] == "RUNNING"
    daemon = shared.daemon()
    try:
        execution = daemon.wait_for(
            lambda: (e := shared.execution())["state"] == "FAILED" and e, "the daemon to resolve the lost run"
        )
    finally:
        daemon.stop()
    assert execution["error"] == (
        f"worker lost: gitsync run acme.slow (pid {run.pid} on {socket.gethostname()}) "
        "stopped while the execution was running"
    )
    assert shared.task_state("long") == "FAILED"


def test_a_frozen_run_is_resolved_after_its_lease_and_writes_nothing_when_it_wakes(tmp_path: Path) -> None:
    """SIGSTOP: the process exists but renews nothing; after the lease, a daemon resolves its run. On SIGCONT the
    run finds it is no longer its own: it stops, and the FAILED state stays."""
    duration = sleeper()
    shared = Shared(tmp_path, {"slow.yaml": slow_flow(duration)})
    run = shared.start_run("acme.slow")
    daemon = None
    try:
        wait_until(lambda: sleeping(duration), "the task's sleep to start")
        daemon = shared.daemon()
        daemon.wait_for(lambda: daemon.health().status_code == 200, "the daemon to be up")
        assert shared.execution()["state"] == "RUNNING"  # alive and renewing: left alone
        run.send_signal(signal.SIGSTOP)
        assert shared.execution()["state"] == "RUNNING"
        execution = daemon.wait_for(
            lambda: (e := shared.execution())["state"] == "FAILED" and e, "the lease to run out", timeout=60
        )
        assert run.poll() is None  # its process still exists: only the lease told it was gone
        assert execution["error"].startswith("worker lost: gitsync run acme.slow")
        run.send_signal(signal.SIGCONT)
        out, _ = run.communicate(timeout=60)
        assert run.returncode == 1, out
        assert shared.execution()["state"] == "FAILED"
        assert sleeping(duration) == []
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGCONT)
            run.kill()
        if daemon is not None:
            daemon.stop()


def test_kill_of_a_run_whose_process_died_ends_it_at_once(tmp_path: Path) -> None:
    duration = sleeper()
    shared = Shared(tmp_path, {"slow.yaml": slow_flow(duration)})
    run = subprocess.Popen(
        [sys.executable, "-m", "gitsync", "run", "acme.slow", "--config", str(shared.config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=shared.env,
        start_new_session=True,
    )
    wait_until(lambda: sleeping(duration), "the task's sleep to start")
    os.killpg(run.pid, signal.SIGKILL)  # the process and every task it started: nothing cleans up
    run.wait(timeout=10)
    kill_leftovers(duration)
    execution = shared.execution()
    killed = shared.cli("kill", execution["id"])
    assert killed.returncode == 0, killed.stderr
    assert f"{execution['id']}: KILLED" in killed.stdout
    after = shared.execution()
    assert after["state"] == "KILLED"
    assert "the process that ran it was gone" in after["error"]
    assert shared.task_state("long") == "KILLED"


def test_a_new_cli_run_resolves_what_a_crashed_one_left(tmp_path: Path) -> None:
    duration = sleeper()
    shared = Shared(
        tmp_path,
        {
            "slow.yaml": slow_flow(duration),
            "quick.yaml": """
            id: quick
            namespace: acme
            tasks:
              - id: hi
                type: io.kestra.plugin.core.debug.Return
                format: hi
            """,
        },
    )
    run = shared.start_run("acme.slow")
    wait_until(lambda: sleeping(duration), "the task's sleep to start")
    run.kill()
    run.wait(timeout=10)
    kill_leftovers(duration)
    quick = shared.cli("run", "acme.quick")
    assert quick.returncode == 0, quick.stdout + quick.stderr
    (lost,) = shared.query("SELECT state, error FROM executions WHERE flow_uid = 'acme.slow'")
    assert lost["state"] == "FAILED" and lost["error"].startswith("worker lost: gitsync run acme.slow")


# -- executions a CLI run creates --------------------------------------------------------------------------------

UPSTREAM = """
id: upstream
namespace: acme
tasks:
  - id: hi
    type: io.kestra.plugin.core.debug.Return
    format: hi
"""

DOWNSTREAM = """
id: downstream
namespace: acme
tasks:
  - id: pause_a_bit
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    commands:
      - sleep 1
triggers:
  - id: after_upstream
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: acme
        flowId: upstream
"""


def test_a_flow_triggered_run_from_gitsync_run_runs_to_its_end_before_it_exits(tmp_path: Path) -> None:
    shared = Shared(tmp_path, {"upstream.yaml": UPSTREAM, "downstream.yaml": DOWNSTREAM})
    result = shared.cli("run", "acme.upstream")
    assert result.returncode == 0, result.stdout + result.stderr
    (downstream,) = shared.query("SELECT id, state, error FROM executions WHERE flow_uid = 'acme.downstream'")
    assert (downstream["state"], downstream["error"]) == ("SUCCESS", None)
    assert f"waiting for execution {downstream['id']} of acme.downstream, started by this run" in result.stdout
    assert f"execution {downstream['id']} ended SUCCESS" in result.stdout


def test_with_a_daemon_running_a_flow_triggered_run_is_handed_to_it(tmp_path: Path) -> None:
    shared = Shared(tmp_path, {"upstream.yaml": UPSTREAM, "downstream.yaml": DOWNSTREAM})
    daemon = shared.daemon()
    try:
        daemon.wait_for(lambda: daemon.health().status_code == 200, "the daemon to be up")
        result = shared.cli("run", "acme.upstream")
        assert result.returncode == 0, result.stdout + result.stderr
        (handed,) = shared.query("SELECT id FROM executions WHERE flow_uid = 'acme.downstream'")
        assert f"execution {handed['id']} of acme.downstream is handed to the running daemon" in result.stdout
        daemon.wait_for(
            lambda: shared.query("SELECT 1 FROM executions WHERE flow_uid = 'acme.downstream' AND state = 'SUCCESS'"),
            "the daemon to run the handed execution",
        )
        (owner,) = shared.query("SELECT owner FROM executions WHERE flow_uid = 'acme.downstream'")
        assert owner["owner"] is None or owner["owner"].startswith("daemon:")
    finally:
        daemon.stop()


def test_a_flow_retry_as_a_new_execution_runs_before_gitsync_run_exits(tmp_path: Path) -> None:
    marker = tmp_path / "failed-once"
    shared = Shared(
        tmp_path,
        {
            "flaky.yaml": f"""
            id: flaky
            namespace: acme
            retry:
              type: constant
              behavior: CREATE_NEW_EXECUTION
              interval: PT0.5S
              maxAttempts: 3
            tasks:
              - id: once
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands:
                  - if [ -e {marker} ]; then exit 0; fi; touch {marker}; exit 1
            """
        },
    )
    result = shared.cli("run", "acme.flaky")
    rows = shared.query("SELECT id, state, attempt FROM executions ORDER BY id")
    assert [(r["state"], r["attempt"]) for r in rows] == [("RETRIED", 1), ("SUCCESS", 2)]
    assert f"execution {rows[1]['id']} ended SUCCESS" in result.stdout
