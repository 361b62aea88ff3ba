"""How the engine decides each flowable task (Sequential, Parallel, If, Switch, ForEach, Dag, …).

A handler gets the running execution, the task, the scope the task stands in and its task-run record, and
returns the task's state (or the state and its outputs). Children run through `run.run_task`/`run.run_list`,
so every rule of the engine (runIf, retries, allowFailure, errors/finally) applies inside flowables too.
Branches of Parallel, concurrent ForEach iterations and Dag tasks run on threads of their own (bounded by
the task's concurrency), never on the executor's workers, so a flowable waiting for children cannot starve
the runnables it waits for.
"""

from __future__ import annotations

import fnmatch
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from runner.api import TaskFailed, TaskKilled
from runner.states import State, combine
from runner.truthy import truthy

if TYPE_CHECKING:
    from runner.engine.engine import Scope, TaskRunRecord, _Execution

Outcome = State | tuple[State, dict[str, Any]]
Handler = Callable[["_Execution", Any, "Scope", "TaskRunRecord"], Outcome]


def _inner(scope: Scope, record: TaskRunRecord, task: Any, **changes: Any) -> Scope:
    return scope.child(record.id, task.id, **changes)


def sequential(run: _Execution, task: Any, scope: Scope, record: TaskRunRecord) -> Outcome:
    return run.run_list(task.tasks, _inner(scope, record, task))


def allow_failure(run: _Execution, task: Any, scope: Scope, record: TaskRunRecord) -> Outcome:
    """The children's failure is returned as is, so the local `errors` run; the engine then makes it a WARNING."""
    return run.run_list(task.tasks, _inner(scope, record, task))


def parallel(run: _Execution, task: Any, scope: Scope, record: TaskRunRecord) -> Outcome:
    inner = _inner(scope, record, task)
    jobs = [lambda child=child: run.run_task(child, inner) for child in task.tasks]
    return combine(_concurrently(jobs, task.concurrent))


def if_(run: _Execution, task: Any, scope: Scope, record: TaskRunRecord) -> Outcome:
    result = truthy(run.evaluate(task.condition, run.variables(task, scope, record)))
    branch = task.then if result else task.else_
    return run.run_list(branch, _inner(scope, record, task)), {"evaluationResult": result}


def switch(run: _Execution, task: Any, scope: Scope, record: TaskRunRecord) -> Outcome:
    value = run.render(task.value, run.variables(task, scope, record))
    key = str(value).lower() if isinstance(value, bool) else str(value)
    cases = task.cases or {}
    branch = cases.get(key, task.defaults)
    if branch is None:
        return State.SUCCESS, {"value": key}
    return run.run_list(branch, _inner(scope, record, task)), {"value": key}


def _values(run: _Execution, task: Any, scope: Scope, record: TaskRunRecord, raw: Any) -> list[Any]:
    value = run.evaluate(raw, run.variables(task, scope, record)) if isinstance(raw, str) else raw
    value = run.render(value, run.variables(task, scope, record)) if isinstance(value, list) else value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise TaskFailed(f"values must be a list or a JSON array, got {value[:80]!r}") from None
    if value is None:
        return []
    if not isinstance(value, list):
        raise TaskFailed(f"values must be a list, got {type(value).__name__}")
    nulls = sum(1 for item in value if item is None)
    if nulls:
        raise TaskFailed(f"Found '{nulls}' null values on Each, with values={json.dumps(value)}")
    return value


def _key(value: Any) -> str:
    """The value as `taskrun.value` shows it, and the key of the loop's outputs: strings as-is, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _loop(run: _Execution, task: Any, scope: Scope, record: TaskRunRecord, values: list[Any], limit: int) -> State:
    jobs = []
    for iteration, value in enumerate(values):
        key = _key(value)
        inner = _inner(scope, record, task, value=key, iteration=iteration, loop_values=(*scope.loop_values, key))
        jobs.append(lambda inner=inner: run.run_list(task.tasks, inner))
    return combine(_concurrently(jobs, limit, stop_on_failure=limit == 1))


def for_each(run: _Execution, task: Any, scope: Scope, record: TaskRunRecord) -> Outcome:
    values = _values(run, task, scope, record, task.values)
    return _loop(run, task, scope, record, values, task.concurrencyLimit)


def each_sequential(run: _Execution, task: Any, scope: Scope, record: TaskRunRecord) -> Outcome:
    return _loop(run, task, scope, record, _values(run, task, scope, record, task.value), 1)


def each_parallel(run: _Execution, task: Any, scope: Scope, record: TaskRunRecord) -> Outcome:
    return _loop(run, task, scope, record, _values(run, task, scope, record, task.value), task.concurrent)


def dag(run: _Execution, task: Any, scope: Scope, record: TaskRunRecord) -> Outcome:
    """Run each task when the tasks it depends on have succeeded; `concurrent` at a time (0: no limit)."""
    inner = _inner(scope, record, task)
    nodes = {entry.task.id: entry for entry in task.tasks}
    states: dict[str, State] = {}
    condition = threading.Condition()
    limit = task.concurrent or len(nodes)
    running = 0

    def ready() -> list[str]:
        return [
            ident
            for ident, entry in nodes.items()
            if ident not in states
            and all(states.get(dep) in (State.SUCCESS, State.WARNING, State.SKIPPED) for dep in entry.dependsOn or [])
        ]

    def work(ident: str) -> None:
        nonlocal running
        state = run.run_task(nodes[ident].task, inner)
        with condition:
            states[ident] = state
            running -= 1
            condition.notify_all()

    with condition:
        while True:
            failed = any(s.is_failure for s in states.values())
            candidates = [] if failed or run.cancelled.is_set() else ready()
            candidates = [c for c in candidates if states.get(c) is None]
            for ident in candidates[: max(0, limit - running)]:
                states[ident] = State.RUNNING
                running += 1
                threading.Thread(target=work, args=(ident,), daemon=True).start()
            if running == 0:
                break
            condition.wait()
    return combine(s for s in states.values() if s != State.RUNNING)


def working_directory(run: _Execution, task: Any, scope: Scope, record: TaskRunRecord) -> Outcome:
    """Its tasks share one folder: inputFiles are written before them, outputFiles are stored after."""
    workdir = run.root / record.id
    workdir.mkdir(parents=True, exist_ok=True)
    variables = run.variables(task, scope, record)
    for name, content in (run.render(task.inputFiles or {}, variables) or {}).items():
        _write_input(run, workdir, name, content)
    state = run.run_list(task.tasks, _inner(scope, record, task, workdir=workdir))
    outputs: dict[str, Any] = {}
    if task.outputFiles:
        stored = {}
        for pattern in run.render(list(task.outputFiles), variables):
            for path in sorted(workdir.rglob("*")):
                relative = str(path.relative_to(workdir))
                if path.is_file() and fnmatch.fnmatch(relative, pattern):
                    stored[relative] = run.storage.put(path, relative)
        outputs["outputFiles"] = stored
    return state, outputs


def _write_input(run: _Execution, workdir: Any, name: str, content: Any) -> None:
    target = (workdir / name).resolve()
    if workdir.resolve() not in target.parents:
        raise TaskFailed(f"input file {name!r} would be written outside the working directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str) and content.startswith("kestra:///"):
        target.write_bytes(run.storage.path(content).read_bytes())
    else:
        target.write_text(content if isinstance(content, str) else json.dumps(content))


def sleep(run: _Execution, task: Any, scope: Scope, record: TaskRunRecord) -> Outcome:
    """A timer decided by the engine (no worker is held while it waits)."""
    from runner.engine.retry import seconds_of

    rendered = run.render_task(task, run.variables(task, scope, record))
    seconds = seconds_of(rendered.duration)
    if seconds is None:
        raise TaskFailed(f"duration {rendered.duration!r} is not a duration")
    if run.cancelled.wait(max(0.0, seconds)):
        raise TaskKilled("killed while sleeping")
    return State.SUCCESS


def pause(run: _Execution, task: Any, scope: Scope, record: TaskRunRecord) -> Outcome:
    """With a delay: wait, then go on. Without: the execution is PAUSED until resumed (CLI or API), killed, or
    until the task's `timeout` passes (then the Pause fails). Deprecated nested `tasks` run after the pause."""
    from runner.engine.records import utcnow
    from runner.engine.retry import seconds_of

    variables = run.variables(task, scope, record)
    delay = task.delay or task.pauseDuration
    resumed: dict[str, Any] = {}
    if delay is not None:
        seconds = seconds_of(run.render(delay, variables) if isinstance(delay, str) else delay)
        if seconds is None:
            raise TaskFailed(f"delay {delay!r} is not a duration")
        if run.cancelled.wait(max(0.0, seconds)):
            raise TaskKilled("killed while paused")
    else:
        record.state = State.PAUSED
        run.s.recorder.task_run(record)
        run.s.recorder.execution(run.request.id, State.PAUSED)
        timeout = seconds_of(run.render(task.timeout, variables) if isinstance(task.timeout, str) else task.timeout)
        waiting = _until(run.cancelled, timeout)
        answer = run.s.coordinator.wait_for_resume(run.request.id, waiting)
        if answer is None:
            if run.cancelled.is_set():
                raise TaskKilled("killed while paused")
            raise TaskFailed(f"not resumed within the timeout of {timeout:g}s")
        resumed = answer
        record.state = State.RUNNING
        record.started_at = record.started_at or utcnow()
        run.s.recorder.task_run(record)
        run.s.recorder.execution(run.request.id, State.RUNNING)
    state = run.run_list(task.tasks, _inner(scope, record, task)) if task.tasks else State.SUCCESS
    return state, {"onResume": resumed} if resumed else {}


def _until(cancelled: threading.Event, timeout: float | None) -> threading.Event:
    """An event set when `cancelled` is, or when `timeout` seconds have passed."""
    if timeout is None:
        return cancelled
    done = threading.Event()

    def watch() -> None:
        cancelled.wait(timeout)
        done.set()

    threading.Thread(target=watch, daemon=True).start()
    return done


def subflow(run: _Execution, task: Any, scope: Scope, record: TaskRunRecord) -> Outcome:
    rendered = run.render_task(task, run.variables(task, scope, record))
    labels = dict(run.labels) if rendered.inheritLabels else {}
    labels.update(rendered.labels or {})
    result = run.s.coordinator.subflow(run.request, rendered, dict(rendered.inputs or {}), labels, run.cancelled)
    outputs = {"executionId": result.execution_id, "state": result.state.value, "outputs": result.outputs}
    if not rendered.wait:
        return State.SUCCESS, outputs
    if result.state.is_failure and rendered.transmitFailed:
        raise TaskFailed(f"subflow execution {result.execution_id} ended {result.state.value}", outputs)
    return (State.WARNING if result.state == State.WARNING else State.SUCCESS), outputs


def _concurrently(jobs: Sequence[Callable[[], State]], limit: int, stop_on_failure: bool = False) -> list[State]:
    """Run jobs on their own threads, `limit` at a time (0: all at once); sequential when limit is 1."""
    if not jobs:
        return []
    if limit == 1:
        states: list[State] = []
        for job in jobs:
            state = job()
            states.append(state)
            if stop_on_failure and state.is_failure:
                break
        return states
    workers = len(jobs) if limit <= 0 else min(limit, len(jobs))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="branch") as pool:
        return list(pool.map(lambda job: job(), jobs))


HANDLERS: dict[str, Handler] = {
    "io.kestra.plugin.core.flow.Sequential": sequential,
    "io.kestra.plugin.core.flow.Parallel": parallel,
    "io.kestra.plugin.core.flow.If": if_,
    "io.kestra.plugin.core.flow.Switch": switch,
    "io.kestra.plugin.core.flow.ForEach": for_each,
    "io.kestra.plugin.core.flow.EachSequential": each_sequential,
    "io.kestra.plugin.core.flow.EachParallel": each_parallel,
    "io.kestra.plugin.core.flow.Dag": dag,
    "io.kestra.plugin.core.flow.AllowFailure": allow_failure,
    "io.kestra.plugin.core.flow.WorkingDirectory": working_directory,
    "io.kestra.plugin.core.flow.Sleep": sleep,
    "io.kestra.plugin.core.flow.Pause": pause,
    "io.kestra.plugin.core.flow.Subflow": subflow,
}


def decided_types() -> Iterable[str]:
    return HANDLERS.keys()
