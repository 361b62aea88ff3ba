"""Idempotency: each task run is run at most once, and has one result, whatever Celery delivers.

A delivery first looks for the task run's result (a redelivery after it finished: the stored result is sent
again, nothing runs). Else it takes the claim with SET NX: a claim held by a live worker means a duplicate
(dropped); a free claim on a task run already `seen` means the worker that started it is gone: the attempt is
FAILED "worker lost", never run a second time. Results are written with SET NX, so a worker finishing late and
the control plane declaring it lost cannot both be recorded.
"""

from __future__ import annotations

import enum

import redis

from gitsync.workers import keys
from runner.engine.invocation import TaskResult
from runner.states import State


class Claim(enum.Enum):
    RUN = "run"
    DONE = "done"
    """A result exists: send it again."""
    BUSY = "busy"
    """Another worker holds the claim: a duplicate delivery."""
    LOST = "lost"
    """Started before by a worker that is gone."""


def take(client: redis.Redis, task_run_id: str, holder: str, seconds: float) -> Claim:
    if client.exists(keys.result(task_run_id)):
        return Claim.DONE
    if not client.set(keys.claim(task_run_id), holder, nx=True, px=int(seconds * 1000)):
        return Claim.BUSY
    if client.exists(keys.seen(task_run_id)):
        return Claim.LOST
    client.set(keys.seen(task_run_id), holder, ex=keys.DAY)
    return Claim.RUN


def renew(client: redis.Redis, task_run_id: str, holder: str, seconds: float) -> None:
    """Keep the claim (and, after a Redis restart lost them, put back the claim and the `seen` mark)."""
    pipe = client.pipeline(transaction=False)
    pipe.set(keys.claim(task_run_id), holder, px=int(seconds * 1000))
    pipe.set(keys.seen(task_run_id), holder, ex=keys.DAY)
    pipe.execute()


def finish(client: redis.Redis, task_run_id: str, result: TaskResult) -> TaskResult:
    """Record `result` unless one is recorded already; the one that stands."""
    if client.set(keys.result(task_run_id), result.to_json(), nx=True, ex=keys.DAY):
        client.delete(keys.claim(task_run_id))
        return result
    stored = stored_result(client, task_run_id)
    return stored if stored is not None else result


def stored_result(client: redis.Redis, task_run_id: str) -> TaskResult | None:
    raw = client.get(keys.result(task_run_id))
    return None if raw is None else TaskResult.from_json(raw.decode() if isinstance(raw, bytes) else str(raw))


def lost_result(task_id: str, attempt: int, holder: str | None = None) -> TaskResult:
    who = f"worker {holder}" if holder else "the worker running it"
    return TaskResult(
        State.FAILED.value,
        error=(
            f"worker lost: {who} stopped while task {task_id!r} (attempt {attempt}) ran; "
            "the attempt is failed, not run twice (its retry, if any, runs it again)"
        ),
    )
