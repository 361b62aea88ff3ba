"""Replays on the control plane: a new execution of an ended one, run again from one of its task runs.

`Replays.create` checks what is asked (the execution has ended, its revision can still be run, the task ran in it)
and writes the new execution (`ExecutionFactory.create_replay`): the revision and commit the original ran, pinned,
not the flow's current one; its inputs, some given again; its labels with `system.replayOf`; `trigger_kind`
`replay`, and `replay_of` / `replay_from` naming the original and the task run chosen. Whoever starts it (this
process, or the daemon) builds, from those two columns and the original's task runs, what it carries over
(`plan_of`: `runner.engine.replay.plan_replay`, whose docstring holds the rule), so the engine can run it anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from gitsync.executions.creation import ExecutionFactory, secret_inputs, username
from gitsync.executions.errors import NotEnded, RunError
from gitsync.state import executions as execution_rows
from gitsync.state import task_runs as task_run_rows
from gitsync.state.database import Store, loads
from gitsync.sync.diff import iter_tasks
from runner.engine.data import USERNAME
from runner.engine.records import ReplayPlan, TaskRunRecord
from runner.engine.replay import place, plan_replay
from runner.flow import Flow
from runner.masking import MASK
from runner.plugin import Task
from runner.states import State

REPLAY_OF = "system.replayOf"
"""The label of a replay: the id of the execution it replays."""


class Replays:
    """Creates replays of the executions in one state database."""

    def __init__(self, store: Store, factory: ExecutionFactory) -> None:
        self.store = store
        self.factory = factory

    def create(
        self,
        execution_id: str,
        task_id: str | None = None,
        task_run_id: str | None = None,
        inputs: dict[str, Any] | None = None,
        by_hand: bool = False,
    ) -> str:
        """A new CREATED execution replaying `execution_id` from its task run `task_run_id`, or from the first run
        of task `task_id`; its id. RunError when it cannot be (NotEnded while the execution has not ended)."""
        original = execution_rows.get_execution(self.store, execution_id)
        if original is None:
            raise RunError(f"no execution {execution_id!r}; `gitsync executions` lists them, newest first")
        state = State(original["state"])
        if not state.is_terminal:
            raise NotEnded(
                f"execution {execution_id} is {state.value}: only an execution that has ended can be replayed; "
                f"wait for it to end, or kill it first (`gitsync kill {execution_id}`)"
            )
        flow = self._flow(original)
        runs = task_run_rows.records(self.store, execution_id)
        chosen = _chosen(original, flow, runs, task_id, task_run_id)
        plan = plan_replay(execution_id, runs, chosen.id, replayed_whole(flow))
        note = f"replay of execution {execution_id} from task '{chosen.task_id}'{_at(chosen)}"
        if place(plan.restart) != place(chosen):
            note += f" (its WorkingDirectory '{plan.restart.task_id}' runs again whole)"
        carried = sorted({run.task_id for run in plan.carried.values()})
        note += f"; carried over, not run again: {', '.join(carried)}" if carried else "; nothing is carried over"
        return self._write(original, flow, chosen.id, inputs or {}, by_hand, note)

    def _write(
        self,
        original: Mapping[str, Any],
        flow: Flow,
        replay_from: str,
        inputs: dict[str, Any],
        by_hand: bool,
        note: str,
    ) -> str:
        """The replay, written: the original's revision and commit, its inputs with `inputs` given again over them
        (checked again), its trigger variables, and its labels with `system.replayOf` naming it (`system.username`
        is the user of `gitsync replay` when `by_hand`, else none)."""
        earlier = self.factory.live(original["id"]) or {}
        given = {**_given_again(flow, earlier.get("inputs") or loads(original["inputs"]) or {}), **inputs}
        masked = [name for name in secret_inputs(flow) if given.get(name) == MASK]
        if masked:
            raise RunError(
                f"execution {original['id']}: SECRET input{'s' if len(masked) > 1 else ''} "
                f"{', '.join(repr(name) for name in masked)} is never stored in clear, so the replay cannot reuse it; "
                f"give it again (--input {masked[0]}=VALUE, or in the replay's inputs)"
            )
        labels = {k: v for k, v in (earlier.get("labels") or loads(original["labels"]) or {}).items() if k != USERNAME}
        labels[REPLAY_OF] = original["id"]
        user = username() if by_hand else None
        if user:
            labels[USERNAME] = user
        return self.factory.write(
            flow,
            given,
            labels,
            earlier.get("trigger", loads(original["trigger_vars"]) or {}),
            "replay",
            revision=original["revision"],
            commit=original["commit_sha"],
            source=original["source"],
            replay=(original["id"], replay_from),
            note=note,
        )

    def _flow(self, original: Mapping[str, Any]) -> Flow:
        """The flow revision the execution ran, when it can run again (RunError saying why not)."""
        uid, revision = original["flow_uid"], original["revision"]
        if not original["commit_sha"]:
            raise RunError(
                f"execution {original['id']} ran a flow file that is not synced (`gitsync run --file`): its YAML was "
                "not kept, so it cannot be replayed; run the file again"
            )
        active = execution_rows.active_flow(self.store, uid)
        if active is None:
            raise RunError(
                f"flow {uid} is no longer synced (its file was removed from git), so its revision {revision} cannot be "
                "replayed; `gitsync history` shows its revisions"
            )
        if active["disabled"]:
            raise RunError(f"flow {uid} is disabled (`disabled: true` in git), so it cannot be replayed")
        try:
            return self.factory.flow(uid, revision)
        except RunError as exc:
            raise RunError(f"execution {original['id']} cannot be replayed: {exc}") from None


def plan_of(store: Store, factory: ExecutionFactory, execution: Mapping[str, Any]) -> ReplayPlan | None:
    """What the execution (its row) carries over when it is a replay; None when it is not one."""
    if not execution.get("replay_of"):
        return None
    flow = factory.flow_of(dict(execution))
    runs = task_run_rows.records(store, execution["replay_of"])
    if not any(run.id == execution["replay_from"] for run in runs):
        raise RunError(f"the task runs of execution {execution['replay_of']}, which this one replays, are gone")
    return plan_replay(execution["replay_of"], runs, execution["replay_from"], replayed_whole(flow))


def replayed_whole(flow: Flow) -> set[str]:
    """The ids of the flow's tasks that a replay runs again whole (`Task.replayed_whole`: WorkingDirectory)."""
    return {task.id for task in _tasks(flow) if type(task).replayed_whole}


def _chosen(
    original: Mapping[str, Any],
    flow: Flow,
    runs: Sequence[TaskRunRecord],
    task_id: str | None,
    task_run_id: str | None,
) -> TaskRunRecord:
    """The task run asked for: `task_run_id`, or the first run of `task_id` (RunError naming what can be asked)."""
    ran = ", ".join(dict.fromkeys(run.task_id for run in runs)) or "none"
    execution = original["id"]
    if task_run_id is not None:
        found = next((run for run in runs if run.id == task_run_id), None)
        if found is None:
            raise RunError(f"execution {execution} has no task run {task_run_id!r}; the tasks that ran in it: {ran}")
        if task_id is not None and found.task_id != task_id:
            raise RunError(f"task run {task_run_id} is a run of task '{found.task_id}', not of '{task_id}'")
        return found
    if task_id is None:
        raise RunError(f"say which task to replay from; the tasks that ran in execution {execution}: {ran}")
    found = next((run for run in runs if run.task_id == task_id), None)
    if found is not None:
        return found
    if task_id not in {task.id for task in _tasks(flow)}:
        raise RunError(
            f"flow {flow.uid} (revision {original['revision']}) has no task '{task_id}'; "
            f"the tasks that ran in execution {execution}: {ran}"
        )
    raise RunError(
        f"task '{task_id}' did not run in execution {execution}, so no replay can start from it; "
        f"the tasks that ran in it: {ran}"
    )


def _given_again(flow: Flow, resolved: Mapping[str, Any]) -> dict[str, Any]:
    """An execution's resolved inputs as they are given to its replay: each is checked again as given, and a JSON
    or YAML input whose value is text is given as JSON text (else the text would be parsed once more)."""
    kinds = {item.id: getattr(item, "value_type", "") for item in flow.inputs or []}
    return {
        name: json.dumps(value) if kinds.get(name) in ("JSON", "YAML") and isinstance(value, str) else value
        for name, value in resolved.items()
    }


def _tasks(flow: Flow) -> list[Task]:
    """Every task of the flow, nested ones included."""
    return [task for task in iter_tasks(flow) if isinstance(task, Task)]


def _at(run: TaskRunRecord) -> str:
    return f" [{run.value}]" if run.value is not None else ""
