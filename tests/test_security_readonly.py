"""Issue 9, class 8: a state database that stops taking writes mid-run.

How writes are made to fail, for real, as root: `chmod` does not stop root, so the test sets the immutable
attribute (`chattr +i`, the `immutable` fixture of conftest.py) on the SQLite file and its `-wal` file. The kernel
then refuses every write to them, even through a descriptor the daemon opened earlier and even for root: SQLite's
commit gets EPERM and reports "disk I/O error" (SQLITE_IOERR). The `-shm` file is left alone: it is mmapped, and
a write to an immutable mapping would kill the process with SIGBUS rather than return an error. `chattr -i` gives
writes back. Where the filesystem has no such attribute (`chattr` fails) the test is skipped.

Asserted: `/healthz` answers 503 with "the state database cannot be written: …" while writes fail, 200 again once
they work, and the execution that was running ends with its real outcome instead of staying RUNNING.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from daemon_harness import query_db, running_daemon
from gitservers import GitRepo

API_TOKEN = "api-token-for-readonly-tests"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
SetImmutable = Callable[[Sequence[Path], bool], None]

FLOW = """\
id: slow
namespace: acme.demo
tasks:
  - id: first
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT2S
  - id: middle
    type: io.kestra.plugin.core.log.Log
    message: between the sleeps
  - id: second
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT2S
"""
FLOW_SECONDS = 4.0


def _if(response: Any, status: int) -> Any:
    return response if response.status_code == status else None


def test_a_database_that_refuses_writes_degrades_health_then_the_execution_is_resolved(
    tmp_path: Path, immutable: SetImmutable
) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"flows/slow.yaml": FLOW}, "slow flow")
    source = {"name": "main", "repo": str(repo.path), "branch": "main", "path": "flows", "poll": "1h"}
    with running_daemon(tmp_path / "d", [source], env={"GITSYNC_API_TOKEN": API_TOKEN}) as daemon:
        daemon.wait_for(lambda: "acme.demo.slow" in daemon.flow_uids(), "the flow is applied")
        created = daemon.post("/api/v1/executions/acme.demo/slow", headers=AUTH, json={})
        assert created.status_code == 201, created.text
        execution_id = created.json()["id"]

        def state() -> str:
            rows = query_db(daemon.db, "SELECT state FROM executions WHERE id = ?", (execution_id,))
            return str(rows[0]["state"])

        daemon.wait_for(lambda: state() == "RUNNING", "the execution to run", interval=0.02)
        started = time.monotonic()
        files = [daemon.db, daemon.db.with_name(daemon.db.name + "-wal")]
        immutable(files, True)
        try:
            # the first Sleep ends after 2 s: its task run's end is the first write refused
            degraded = daemon.wait_for(lambda: _if(daemon.health(), 503), "/healthz to report 503", timeout=20)
            report = degraded.json()
            assert report["status"] == "degraded"
            assert report["state"]["degraded"] is True
            assert report["state"]["reason"].startswith("the state database cannot be written: ")
            # Let the engine end the execution while writes still fail (this waits for the flow, asserts nothing
            # about time): its end is held by the recorder, not lost, and the engine thread did not crash.
            time.sleep(max(0.0, FLOW_SECONDS + 1.5 - (time.monotonic() - started)))
            assert state() == "RUNNING"
            assert daemon.health().status_code == 503
            assert daemon.alive()
        finally:
            immutable(files, False)
        healthy = daemon.wait_for(lambda: _if(daemon.health(), 200), "/healthz to be ok again", timeout=20)
        assert healthy.json()["state"] == {"degraded": False, "reason": None}
        daemon.wait_for(lambda: state() == "SUCCESS", "the held end state to be written", timeout=20)
        runs = query_db(
            daemon.db, "SELECT task_id, state FROM task_runs WHERE execution_id = ? ORDER BY id", (execution_id,)
        )
        assert [(r["task_id"], r["state"]) for r in runs] == [
            ("first", "SUCCESS"),
            ("middle", "SUCCESS"),
            ("second", "SUCCESS"),
        ]
        assert "Traceback" not in daemon.log_tail(400)


def test_an_execution_whose_engine_thread_is_gone_becomes_failed_with_the_reason(
    tmp_path: Path, immutable: SetImmutable
) -> None:
    """The recorder on its own: the RUNNING write of a thread that then ends is refused; when writes work again
    the execution cannot be left RUNNING (no engine will end it), so it becomes FAILED with the reason."""
    import threading
    from datetime import UTC, datetime

    from gitsync.executions.recorder import SqliteRecorder
    from gitsync.state.database import Store
    from runner.states import State

    db = tmp_path / "state.db"
    store = Store(db)
    with store.atomic() as conn:
        conn.execute(
            "INSERT INTO executions (id, flow_uid, revision, commit_sha, state, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            ("e1", "acme.demo.slow", 1, "", "CREATED", "2026-01-01T00:00:00.000+00:00"),
        )
    recorder = SqliteRecorder(store)
    files = [db, db.with_name(db.name + "-wal")]
    immutable(files, True)
    try:
        engine = threading.Thread(target=lambda: recorder.execution("e1", State.RUNNING, started_at=datetime.now(UTC)))
        engine.start()
        engine.join(10)
        assert not engine.is_alive()  # the refused write did not raise into (or hang) the engine's thread
        assert store.write_failure() is not None
    finally:
        immutable(files, False)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        row = store.query_one("SELECT state, error FROM executions WHERE id = 'e1'")
        if row and row["state"] != "CREATED":
            break
        time.sleep(0.05)
    assert row is not None and row["state"] == "FAILED"
    assert row["error"].startswith("the state database could not be written: ")
    assert store.write_failure() is None
    store.close()
