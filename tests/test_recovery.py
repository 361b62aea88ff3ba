"""Crash recovery of executions: a `gitsync run` process killed with SIGKILL mid-task leaves nothing RUNNING."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from runtime import Runtime

from gitsync.executions import ownership
from gitsync.state import lost


def test_an_execution_killed_mid_task_is_failed_with_worker_lost(tmp_path: Path) -> None:
    rt = Runtime(tmp_path)
    rt.deploy(
        {
            "slow.yaml": """
            id: slow
            namespace: acme
            tasks:
              - id: first
                type: io.kestra.plugin.core.debug.Return
                format: done
              - id: long
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands:
                  - sleep 120
        """
        }
    )
    rt.close()
    db, data = str(tmp_path / "state.db"), str(tmp_path / "data")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitsync", "run", "acme.slow", "--db", db, "--data-dir", data],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        rt = Runtime(tmp_path)
        deadline = time.monotonic() + 30
        while rt.store.query_one("SELECT 1 FROM task_runs WHERE task_id = 'long' AND state = 'RUNNING'") is None:
            assert time.monotonic() < deadline, "the long task never started"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the process and the script it started: a crash, nothing cleaned up
        proc.wait(timeout=10)
    (execution,) = rt.store.query("SELECT id, state FROM executions")
    assert execution["state"] == "RUNNING"

    gone = ownership.gone_owners(rt.store)  # its pid is gone: found at once, without waiting for the lease
    assert [row["label"] for row in gone] == ["gitsync run acme.slow"]
    resolved = lost.resolve_lost(rt.store, None, gone, datetime.now(UTC))
    assert [row["id"] for row in resolved] == [execution["id"]]
    after = rt.execution(execution["id"])
    owner = f"gitsync run acme.slow (pid {proc.pid} on {socket.gethostname()})"
    reason = f"worker lost: {owner} stopped while the execution was running"
    assert (after["state"], after["error"]) == ("FAILED", reason)
    assert rt.states(after) == {"first": "SUCCESS", "long": "FAILED"}
    assert next(r for r in after["task_runs"] if r["task_id"] == "long")["error"] == reason
    rt.close()
