"""Files in transit: a task's input files go to its worker, and its output files come back, through Redis keys
of the task run (expiring after a day, deleted once read), never through the database or a shared disk.

Each file is capped at `celery.max_file_mb`; a larger one fails the task with a message that says so. The
worker writes what it receives under its own `data_dir` at the path the `kestra:///` URI names, so the task
reads it as it would locally; the control plane stores what comes back in the execution's storage.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import redis

from gitsync.workers import keys
from runner.api import TaskFailed
from runner.engine.invocation import TaskInvocation, TaskResult
from runner.states import State
from runner.storage import LocalStorage, parse_uri


def _cap_message(uri: str, size: int, cap: int, way: str) -> str:
    return (
        f"file {uri} is {size / 1048576:.1f} MB, over celery.max_file_mb ({cap / 1048576:g} MB), so it cannot "
        f"travel {way} through Redis; raise celery.max_file_mb or keep the file smaller"
    )


def _storage(data_dir: Path, invocation: TaskInvocation) -> LocalStorage:
    return LocalStorage(data_dir, invocation.namespace, invocation.flow_id, invocation.execution_id)


def _send(
    client: redis.Redis, storage: LocalStorage, uris: list[str], key: Callable[[str], str], cap: int, way: str
) -> str | None:
    """Each file the URIs name, into Redis under `key(uri)`; the message of the first over the cap (then it stops).
    A URI that names no file is left out: the task fails on it as it would locally."""
    for uri in uris:
        try:
            path = storage.path(uri)
        except TaskFailed:
            continue
        size = path.stat().st_size
        if size > cap:
            return _cap_message(uri, size, cap, way)
        client.set(key(uri), path.read_bytes(), ex=keys.DAY)
    return None


def send_inputs(client: redis.Redis, invocation: TaskInvocation, data_dir: Path, cap: int) -> None:
    """Control plane: each input file the invocation names, into Redis. Raises `TaskFailed` over the cap."""
    run = invocation.task_run_id
    refused = _send(client, _storage(data_dir, invocation), invocation.input_files,
                    lambda uri: keys.in_file(run, uri), cap, "to its worker")  # fmt: skip
    if refused is not None:
        raise TaskFailed(refused)


def receive_inputs(client: redis.Redis, invocation: TaskInvocation, data_dir: Path) -> None:
    """Worker: the input files sent with the invocation, written under the worker's data_dir."""
    for uri in invocation.input_files:
        content = client.get(keys.in_file(invocation.task_run_id, uri))
        if isinstance(content, bytes):  # an input may be a file of another execution (a parent's): stored there
            stored = parse_uri(uri)
            LocalStorage(data_dir, stored.namespace, stored.flow_id, stored.execution_id).write_at(uri, content)


def send_outputs(
    client: redis.Redis, invocation: TaskInvocation, result: TaskResult, data_dir: Path, cap: int
) -> TaskResult:
    """Worker: the result's output files into Redis; the result FAILED when one is over the cap."""
    run = invocation.task_run_id
    refused = _send(client, _storage(data_dir, invocation), result.output_files,
                    lambda uri: keys.out_file(run, uri), cap, "back")  # fmt: skip
    if refused is not None:
        return TaskResult(State.FAILED.value, outputs=result.outputs, error=refused)
    return result


def receive_outputs(client: redis.Redis, invocation: TaskInvocation, result: TaskResult, data_dir: Path) -> TaskResult:
    """Control plane: the output files, into the execution's storage, their keys deleted; the result FAILED when
    the worker names a file of another execution, which is not written."""
    storage = _storage(data_dir, invocation)
    for uri in result.output_files:
        key = keys.out_file(invocation.task_run_id, uri)
        content = client.get(key)
        if isinstance(content, bytes):
            client.delete(key)
            try:
                storage.write_at(uri, content)
            except TaskFailed as exc:
                return TaskResult(State.FAILED.value, outputs=result.outputs, error=f"output file refused: {exc}")
    return result


def forget_inputs(client: redis.Redis, invocation: TaskInvocation) -> None:
    """Control plane, once the task run ended: its input files' keys deleted."""
    if invocation.input_files:
        client.delete(*(keys.in_file(invocation.task_run_id, uri) for uri in invocation.input_files))
