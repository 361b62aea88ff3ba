"""A task that reads namespace files, run the way a Celery worker runs it (`gitsync.workers.worker` builds its
`WorkerServices` with `WorkerNamespaceFiles`): the worker has no git cache, so the task fails saying where the
files are and what to do, once (not retried), instead of the message for a flow run from a file."""

from __future__ import annotations

import threading
from pathlib import Path

import installed

from gitsync.state.kv import SqliteKeyValue
from gitsync.workers.namespace_files import WorkerNamespaceFiles
from runner.engine.executors import WorkerServices, run_invocation
from runner.engine.invocation import TaskInvocation


def test_namespace_files_on_a_worker_fail_naming_where_they_are(tmp_path: Path) -> None:
    services = WorkerServices(
        installed.registry(), tmp_path, SqliteKeyValue(tmp_path / "kv.db"), namespace_files=WorkerNamespaceFiles
    )
    invocation = TaskInvocation(
        type="io.kestra.plugin.scripts.shell.Commands",
        properties={"id": "etl", "type": "io.kestra.plugin.scripts.shell.Commands", "commands": ["cat query.sql"],
                    "namespaceFiles": {"enabled": True},
                    "taskRunner": {"type": "io.kestra.plugin.core.runner.Process"}},
        execution_id="e1", namespace="acme.data", flow_id="load", flow_revision=3, task_id="etl", task_run_id="tr1",
        attempt=1, commit="0123456789abcdef0123",
    )  # fmt: skip
    result = run_invocation(services, invocation, None, threading.Event())
    assert result.state == "FAILED"
    assert result.error is not None
    assert "_files/acme.data/ at commit 0123456789ab" in result.error
    assert "Celery worker" in result.error and "executor: local" in result.error
    assert result.permanent


def test_a_task_without_namespace_files_runs_on_a_worker(tmp_path: Path) -> None:
    services = WorkerServices(
        installed.registry(), tmp_path, SqliteKeyValue(tmp_path / "kv.db"), namespace_files=WorkerNamespaceFiles
    )
    invocation = TaskInvocation(
        type="io.kestra.plugin.scripts.shell.Commands",
        properties={"id": "etl", "type": "io.kestra.plugin.scripts.shell.Commands", "commands": ["echo fine"],
                    "taskRunner": {"type": "io.kestra.plugin.core.runner.Process"}},
        execution_id="e2", namespace="acme.data", flow_id="load", flow_revision=3, task_id="etl", task_run_id="tr2",
        attempt=1, commit="0123456789abcdef0123",
    )  # fmt: skip
    result = run_invocation(services, invocation, None, threading.Event())
    assert result.state == "SUCCESS", result.error
