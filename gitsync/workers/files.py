"""Files in transit: a task's input files go to its worker, and its output files come back, through Redis keys
of the task run (expiring after a day, deleted once read), never through the database or a shared disk.

Each file is capped at `celery.max_file_mb`; a larger one fails the task with a message that says so. The
worker writes what it receives under its own `data_dir` at the path the `kestra:///` URI names, so the task
reads it as it would locally; the control plane stores what comes back in the execution's storage.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import redis

from gitsync.workers import keys
from runner.api import TaskFailed
from runner.engine.invocation import TaskInvocation, TaskResult
from runner.states import State
from runner.storage import OWNER_FILE, LocalStorage, parse_uri


def _cap_message(uri: str, size: int, cap: int, way: str) -> str:
    return (
        f"file {uri} is {size / 1048576:.1f} MB, over celery.max_file_mb ({cap / 1048576:g} MB), so it cannot "
        f"travel {way} through Redis; raise celery.max_file_mb or keep the file smaller"
    )


def _storage(data_dir: Path, invocation: TaskInvocation) -> LocalStorage:
    return LocalStorage(data_dir, invocation.namespace, invocation.flow_id, invocation.execution_id)


def send_inputs(client: redis.Redis, invocation: TaskInvocation, data_dir: Path, cap: int) -> None:
    """Control plane: each input file the invocation names, into Redis. Raises `TaskFailed` over the cap; a URI
    that names no file is left out (the task fails on it as it would locally)."""
    storage = _storage(data_dir, invocation)
    for uri in invocation.input_files:
        try:
            path = storage.path(uri)
        except TaskFailed:
            continue
        size = path.stat().st_size
        if size > cap:
            raise TaskFailed(_cap_message(uri, size, cap, "to its worker"))
        client.set(keys.in_file(invocation.task_run_id, uri), path.read_bytes(), ex=keys.DAY)


def _write(data_dir: Path, uri: str, content: bytes) -> None:
    stored = parse_uri(uri)
    execution_dir = data_dir / "executions" / stored.execution_id
    target = execution_dir / stored.relative
    target.parent.mkdir(parents=True, exist_ok=True)
    owner = execution_dir / OWNER_FILE
    if not owner.exists():
        owner.write_text(json.dumps({"namespace": stored.namespace, "flow_id": stored.flow_id}), encoding="utf-8")
    temporary = target.with_name(f".{target.name}.part")
    temporary.write_bytes(content)
    os.replace(temporary, target)


def receive_inputs(client: redis.Redis, invocation: TaskInvocation, data_dir: Path) -> None:
    """Worker: the input files sent with the invocation, written under the worker's data_dir."""
    for uri in invocation.input_files:
        content = client.get(keys.in_file(invocation.task_run_id, uri))
        if isinstance(content, bytes):
            _write(data_dir, uri, content)


def send_outputs(
    client: redis.Redis, invocation: TaskInvocation, result: TaskResult, data_dir: Path, cap: int
) -> TaskResult:
    """Worker: the result's output files into Redis; the result FAILED when one is over the cap."""
    storage = _storage(data_dir, invocation)
    for uri in result.output_files:
        try:
            path = storage.path(uri)
        except TaskFailed:
            continue
        size = path.stat().st_size
        if size > cap:
            return TaskResult(State.FAILED.value, outputs=result.outputs, error=_cap_message(uri, size, cap, "back"))
        client.set(keys.out_file(invocation.task_run_id, uri), path.read_bytes(), ex=keys.DAY)
    return result


def receive_outputs(client: redis.Redis, invocation: TaskInvocation, result: TaskResult, data_dir: Path) -> None:
    """Control plane: the output files, into the execution's storage; their keys deleted."""
    for uri in result.output_files:
        key = keys.out_file(invocation.task_run_id, uri)
        content = client.get(key)
        if isinstance(content, bytes):
            _write(data_dir, uri, content)
            client.delete(key)


def forget_inputs(client: redis.Redis, invocation: TaskInvocation) -> None:
    """Control plane, once the task run ended: its input files' keys deleted."""
    if invocation.input_files:
        client.delete(*(keys.in_file(invocation.task_run_id, uri) for uri in invocation.input_files))
