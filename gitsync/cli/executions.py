"""`gitsync run`, `replay`, `executions`, `logs`, `kill`, `resume`: executions from the command line."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from gitsync.cli.interrupts import Interrupts
from gitsync.cli.state_commands import print_table, settings_from_args
from gitsync.compose import build_runs, load_registry, open_store
from gitsync.config import Settings
from gitsync.errors import UsageError
from gitsync.executions.manager import RunError, RunManager
from gitsync.flows.loader import load_paths
from gitsync.state import executions as execution_rows
from gitsync.state import task_runs as task_run_rows
from gitsync.state.database import Store
from runner.engine.engine import LogLine, TaskRunRecord
from runner.inputs import UploadedFile
from runner.registry import Registry
from runner.states import State

_MARKS = {
    "SUCCESS": "ok",
    "WARNING": "warn",
    "FAILED": "FAIL",
    "KILLED": "killed",
    "SKIPPED": "skip",
    "RUNNING": "..",
    "RETRIED": "retry",
    "PAUSED": "paused",
}


def parse_inputs(pairs: list[str], files: bool = False) -> dict[str, Any]:
    """`--input KEY=VALUE` pairs; with `files`, `KEY=@PATH` gives a local file for a FILE input (`KEY=@@text` is
    the text `@text`)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--input takes KEY=VALUE, got {pair!r}")
        if files and value.startswith("@@"):
            value = value[1:]
        elif files and value.startswith("@"):
            path = Path(value[1:]).expanduser()
            if not path.is_file():
                raise UsageError(
                    f"--input {key}=@{path}: no such file {path} (KEY=@PATH uploads a file for a FILE input; "
                    "write KEY=@@text for a value that starts with @)"
                )
            out[key] = UploadedFile(filename=path.name, path=path.resolve())
            continue
        out[key] = value
    return out


def run_flow(args: argparse.Namespace) -> int:
    """Exit 0 when the execution ends SUCCESS or WARNING, 1 otherwise, 2 for a usage error (nothing is touched),
    128 + the signal when interrupted (130 for Ctrl-C, 143 for SIGTERM)."""
    if not args.file and not args.uid:
        raise UsageError("give a flow (NS.ID) or --file FLOW.yaml")
    inputs = parse_inputs(args.input, files=True)
    settings = settings_from_args(args)
    registry = load_registry()
    try:
        flow = _flow_from_file(args.file, registry) if args.file else None
    except RunError as exc:  # an invalid flow file: the run fails (1), with every problem located
        print(f"gitsync run: {exc}", file=sys.stderr)
        return 1
    label = f"{flow.uid} (from {args.file})" if flow is not None else args.uid

    def create(manager: RunManager) -> str:
        execution_id = manager.create_unsynced(flow, inputs) if flow else manager.create(args.uid, inputs)
        print(f"execution {execution_id} of {label}", flush=True)
        return execution_id

    return _run_new(args, settings, registry, f"gitsync run {label}", create)


def replay(args: argparse.Namespace) -> int:
    """`gitsync replay`: a new execution run from a task of an ended one, followed as `gitsync run` follows its own
    (same exit codes); an unknown execution is a usage error (exit 2), a refused replay exits 1."""
    if not args.task and not args.task_run:
        raise UsageError("say which task to replay from: --task TASK_ID (or --task-run TASK_RUN_ID)")
    inputs = parse_inputs(args.input, files=True)
    settings = settings_from_args(args)
    store = open_store(settings)
    try:
        if execution_rows.execution_state(store, args.execution) is None:
            raise UsageError(_unknown_execution(args.execution))
    finally:
        store.close()

    def create(manager: RunManager) -> str:
        execution_id = manager.replay(args.execution, args.task, task_run_id=args.task_run, inputs=inputs, by_hand=True)
        row = execution_rows.get_execution(manager.store, execution_id) or {}
        runs = task_run_rows.records(manager.store, args.execution)
        chosen = next((run for run in runs if run.id == row.get("replay_from")), None)
        task = "" if chosen is None else f" from task '{chosen.task_id}'"
        if chosen is not None and chosen.value is not None:
            task += f" [{chosen.value}]"
        print(
            f"execution {execution_id} replays execution {args.execution} of {row.get('flow_uid')} "
            f"(revision {row.get('revision')}){task}",
            flush=True,
        )
        return execution_id

    return _run_new(args, settings, load_registry(), f"gitsync replay {args.execution}", create)


def _run_new(
    args: argparse.Namespace, settings: Settings, registry: Registry, label: str, create: Callable[[RunManager], str]
) -> int:
    """Create an execution (`create`, which prints its first line) and run it here with live progress, as
    `gitsync run` does: what it starts for others to follow is waited for or handed to the daemon, Ctrl-C kills it.
    Exit 0 when it ends SUCCESS or WARNING, 1 otherwise (or when it is refused), 128 + the signal when interrupted."""
    store = open_store(settings)
    printer = _Progress(sys.stdout, quiet=args.quiet, resume_flags=settings.state_flags())
    manager = build_runs(store, settings, registry, progress=printer, owner=("cli", label))
    interrupts = Interrupts(manager, settings.db)
    try:
        manager.open()
        interrupts.install()
        execution_id = create(manager)
        interrupts.execution_id = execution_id
        outcome = manager.run(execution_id)
        if interrupts.signal is None:
            _follow_downstream(manager, store)
    except RunError as exc:
        print(f"gitsync {args.command}: {exc}", file=sys.stderr)
        return 1
    finally:
        interrupts.restore()
        manager.shutdown()
        store.close()
    if outcome is None:
        print("the execution did not start (queued or cancelled by the flow's concurrency limit)")
        return 1
    print(f"{outcome.state.value}" + (f": {outcome.error}" if outcome.error else ""))
    if outcome.outputs:
        print("outputs: " + json.dumps(outcome.outputs, default=str, indent=2))
    if interrupts.signal is not None:
        return 128 + interrupts.signal
    return 0 if outcome.state in (State.SUCCESS, State.WARNING) else 1


def _follow_downstream(manager: RunManager, store: Store) -> None:
    """Executions this run started for others to follow (Flow triggers, retries, subflows not waited for) run to
    their end before `gitsync run` exits; those handed to the daemon are named."""
    seen: set[str] = set()
    while True:
        waiting = [i for i in manager.active() if i not in seen]
        if not waiting:
            break
        for execution_id in waiting:
            row = execution_rows.get_execution(store, execution_id)
            flow = row["flow_uid"] if row else "?"
            print(f"waiting for execution {execution_id} of {flow}, started by this run", flush=True)
        seen.update(waiting)
        manager.wait_all()
        for execution_id in waiting:
            state = execution_rows.execution_state(store, execution_id) or "UNKNOWN"
            print(f"execution {execution_id} ended {state}", flush=True)
    for execution_id in manager.handed:
        row = execution_rows.get_execution(store, execution_id)
        flow = row["flow_uid"] if row else "?"
        print(f"execution {execution_id} of {flow} is handed to the running daemon (see `gitsync executions`)")


def _flow_from_file(path: str, registry: Registry) -> Any:
    """The one flow of a file, or of a folder holding one flow file (several: a usage error that lists them)."""
    result = load_paths([path], registry)
    if len(result.files) > 1:
        names = "\n".join(f"  {loaded.path}" for loaded in result.files)
        raise UsageError(f"{path} holds {len(result.files)} flow files; give one of them to --file:\n{names}")
    if not result.ok or not result.files or result.files[0].flow is None:
        problems = "\n".join(p.format() for p in result.errors) or "no flow in the file"
        raise RunError(f"{path} is not a valid flow:\n{problems}")
    return result.files[0].flow


class _Progress:
    """Live progress: one line per finished task run, the logs as they come, and the execution's pauses.

    A pause is said even with `--quiet` (the run waits for the user): which task paused it, and the
    `gitsync resume` command to paste, with the state flags this run used (`resume_flags`)."""

    def __init__(self, out: Any, quiet: bool, resume_flags: str = "") -> None:
        self.out = out
        self.quiet = quiet
        self.resume_flags = resume_flags
        self.lock = threading.Lock()
        self._pausing: dict[str, TaskRunRecord] = {}
        """Per execution, the task run that is pausing it (its PAUSED row comes just before the execution's)."""
        self._paused: set[str] = set()
        self._errors: dict[str, str] = {}
        """Per task run, the last ERROR line printed (a failed task's line does not print it again)."""

    def __call__(self, kind: str, payload: Any) -> None:
        with self.lock:
            if kind == "task_run" and isinstance(payload, TaskRunRecord):
                self._task_run(payload)
            elif kind == "execution" and isinstance(payload, tuple):
                self._execution(payload[0], payload[1])
            elif kind == "log" and isinstance(payload, LogLine) and payload.level in ("INFO", "WARN", "ERROR"):
                if payload.level == "ERROR" and payload.task_run_id:
                    self._errors[payload.task_run_id] = payload.message
                self._print(f"         {payload.level.lower()}: {payload.message}")

    def _task_run(self, record: TaskRunRecord) -> None:
        if record.state == State.PAUSED:
            self._pausing[record.execution_id] = record
        if not record.state.is_terminal:
            return
        value = f"[{record.value}]" if record.value is not None else ""
        took = ""
        if record.started_at and record.ended_at:
            took = f" {(record.ended_at - record.started_at).total_seconds() * 1000:.0f}ms"
        mark = _MARKS.get(record.state.value, record.state.value)
        error = ""
        if record.error:
            error = " (the error above)" if self._errors.pop(record.id, None) == record.error else f": {record.error}"
        self._print(f"  {mark:>6} {record.task_id}{value}{took}{error}")

    def _execution(self, execution_id: str, state: State) -> None:
        if state == State.PAUSED and execution_id not in self._paused:
            self._paused.add(execution_id)
            record = self._pausing.pop(execution_id, None)
            by = f" by task '{record.task_id}' ({record.task_type.rsplit('.', 1)[-1]})" if record is not None else ""
            self._print(f"execution {execution_id} is paused{by}; to resume it, run in another terminal:", always=True)
            self._print(f"    gitsync resume {execution_id}{self.resume_flags}", always=True)
        elif state == State.RUNNING and execution_id in self._paused:
            self._paused.discard(execution_id)
            self._print(f"execution {execution_id} resumed", always=True)

    def _print(self, line: str, always: bool = False) -> None:
        if always or not self.quiet:
            print(line, file=self.out, flush=True)


def list_executions(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        rows = execution_rows.list_executions(store, flow=args.flow, state=args.state, limit=args.limit)
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps(rows, indent=2, default=str))
        return 0
    print_table([_listed(row) for row in rows], ["id", "flow", "revision", "state", "duration", "trigger", "created"])
    return 0


def _listed(row: dict[str, Any]) -> dict[str, Any]:
    """One `gitsync executions` text row: how long it took, and what started it (its kind, and the trigger's uid
    when a trigger did; `unknown` for rows written before the kind was recorded)."""
    duration = None
    if row.get("started_at") and row.get("ended_at"):
        seconds = datetime.fromisoformat(row["ended_at"]) - datetime.fromisoformat(row["started_at"])
        duration = f"{seconds.total_seconds():.2f}s"
    kind = row.get("trigger_kind") or "unknown"
    trigger = f"{kind} {row['trigger']}" if row.get("trigger") else kind
    return {**row, "duration": duration, "trigger": trigger, "created": row["created_at"]}


def show_logs(args: argparse.Namespace) -> int:
    store = _open(args)
    last = 0
    try:
        if execution_rows.execution_state(store, args.execution) is None:
            raise UsageError(_unknown_execution(args.execution))
        while True:
            rows = task_run_rows.logs_after(store, args.execution, last)
            for row in rows:
                print(f"{row['at']} {row['level']:<5} {row['task_id'] or '-'}: {row['message']}", flush=True)
                last = row["id"]
            state = execution_rows.execution_state(store, args.execution)
            if not args.follow or (state and State(state).is_terminal):
                if args.follow and rows:
                    continue
                break
            time.sleep(0.3)
    finally:
        store.close()
    return 0


def kill(args: argparse.Namespace) -> int:
    return _act(args, lambda manager: manager.request_kill(args.execution).value)


def resume(args: argparse.Namespace) -> int:
    def act(manager: RunManager) -> str:
        manager.request_resume(args.execution, parse_inputs(args.input))
        return "resume requested"

    return _act(args, act)


def _act(args: argparse.Namespace, action: Any) -> int:
    settings = settings_from_args(args)
    store = open_store(settings)
    if execution_rows.execution_state(store, args.execution) is None:
        store.close()
        raise UsageError(_unknown_execution(args.execution))
    manager = build_runs(store, settings, load_registry(), status_sources=None)
    try:
        print(f"{args.execution}: {action(manager)}")
        return 0
    except RunError as exc:
        print(f"gitsync {args.command}: {exc}", file=sys.stderr)
        return 1
    finally:
        manager.shutdown()
        store.close()


def _unknown_execution(execution_id: str) -> str:
    return f"no execution {execution_id!r} in the state; `gitsync executions` lists them, newest first"


def _open(args: argparse.Namespace) -> Store:
    settings = settings_from_args(args)
    if not Path(settings.db).exists():
        raise RunError(f"no state database at {settings.db}")
    return open_store(settings)
