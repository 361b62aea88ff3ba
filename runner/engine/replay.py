"""Replays: a new execution that carries over, done, what an ended execution ran before a chosen task run, and runs
the rest again (Kestra's Replay).

The rule (`plan_replay`), over the original's task runs (the attempts of one task run count as one):

- The chosen task run is run again, and so is everything inside it. When it lies inside a flowable whose tasks
  share what they leave on disk (`replayed_whole`: WorkingDirectory), that flowable is run again whole instead.
- A task run is carried over when it ended done (SUCCESS, WARNING or SKIPPED) at or before the moment the chosen one
  started: it cannot have depended on anything that runs again. Everything inside a carried task run is carried with
  it. What failed or was killed is never carried over: it runs again.
- What ran at the same time as the chosen one, or after it, runs again: the tasks after it in its list, the tasks
  after each of its parents in theirs, a Parallel branch or a ForEach value still running when it started, and the
  `errors`, `finally` and `afterExecution` tasks that ran after it.
- A flowable holding a carried task run is entered again (a new task run that decides again: an If evaluates its
  condition, a ForEach its values); the children it meets that were carried over are not run, they stand as they
  ended, with their outputs. The engine meets each by its place: its parent, task id, value and iteration.

The engine records a carried task run (and what ran inside it) when it meets it, as one of the new execution's
task runs with the original's states, times and outputs (as stored: masked), and logs that it was carried over.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import replace

from runner.engine.context import Scope
from runner.engine.data import ExecutionData, Transitions
from runner.engine.records import ReplayPlan, RunPlace, TaskRunRecord
from runner.plugin import Task
from runner.states import State

DONE = frozenset({State.SUCCESS, State.WARNING, State.SKIPPED})
"""How a task run carried over ended."""


def place(record: TaskRunRecord) -> RunPlace:
    """Where the task run stands: its attempts share it."""
    return record.parent_id, record.task_id, _text(record.value), record.iteration


def plan_replay(
    original_id: str, runs: Sequence[TaskRunRecord], chosen_id: str, whole: Collection[str] = ()
) -> ReplayPlan:
    """What a replay of execution `original_id` from its task run `chosen_id` carries over (the module's rule).
    `runs`: the original's task runs, every attempt; `whole`: the ids of the flow's tasks that run again whole."""
    first: dict[RunPlace, TaskRunRecord] = {}
    last: dict[RunPlace, TaskRunRecord] = {}
    for record in sorted(runs, key=_creation_order):
        first.setdefault(place(record), record)
        last[place(record)] = record
    by_id = {record.id: record for record in runs}
    children: dict[str, list[TaskRunRecord]] = {}
    for record in first.values():
        children.setdefault(record.parent_id or "", []).append(record)

    def ancestors(record: TaskRunRecord) -> list[TaskRunRecord]:
        """Its parent, the parent's parent, …"""
        chain: list[TaskRunRecord] = []
        parent = by_id.get(record.parent_id or "")
        while parent is not None and parent not in chain:
            chain.append(parent)
            parent = by_id.get(parent.parent_id or "")
        return chain

    def below(record: TaskRunRecord) -> list[TaskRunRecord]:
        """What ran inside it, each after its parent."""
        out: list[TaskRunRecord] = []
        stack = list(reversed(children.get(record.id, [])))
        while stack:
            child = stack.pop()
            out.append(child)
            stack.extend(reversed(children.get(child.id, [])))
        return out

    restart = first[place(by_id[chosen_id])]
    shared = [a for a in ancestors(restart) if a.task_id in whole]
    if shared:
        restart = first[place(shared[-1])]  # the outermost
    again = {restart.id, *(a.id for a in ancestors(restart)), *(r.id for r in below(restart))}

    def done(record: TaskRunRecord) -> bool:
        end = last[place(record)]
        return (
            end.state in DONE
            and end.ended_at is not None
            and (restart.started_at is None or end.ended_at <= restart.started_at)
            and record.id not in again
        )

    plan = ReplayPlan(original_id, restart)
    for record in first.values():
        chain = ancestors(record)
        if not done(record) or any(done(a) or a.task_id in whole for a in chain):
            continue  # runs again, or comes with a carried parent, or lies in a flowable that runs again whole
        top = last[place(record)]
        plan.carried[place(record)] = top
        plan.inside[top.id] = [last[place(r)] for r in below(record)]
        plan.reentered.update((place(a), a.id) for a in chain)
    return plan


class Replay:
    """A replay's carried task runs, as the engine meets them (`plan` None: the execution is no replay)."""

    def __init__(self, plan: ReplayPlan | None, data: ExecutionData, transitions: Transitions) -> None:
        self.plan = plan
        self.data = data
        self.t = transitions
        self._original: dict[str, str] = {}
        """The task run id of each flowable entered again -> its task run id in the original."""

    def find(self, task: Task, scope: Scope) -> State | TaskRunRecord | None:
        """How `task` runs in `scope`: carried over (the state it ended in: it is not run), entered again (its new
        task run, under which its carried children are found), or as in any execution (None)."""
        if self.plan is None:
            return None
        with self.data.lock:
            parent = None if scope.parent_id is None else self._original.get(scope.parent_id)
        if scope.parent_id is not None and parent is None:
            return None  # its parent runs anew: nothing under it is carried
        where: RunPlace = (parent, task.id, _text(scope.value), scope.iteration)
        carried = self.plan.carried.get(where)
        if carried is not None:
            return self._carry(carried, scope)
        original = self.plan.reentered.get(where)
        if original is None:
            return None
        record = self.data.new_record(task, scope, attempt=1)
        with self.data.lock:
            self._original[record.id] = original
        return record

    def _carry(self, carried: TaskRunRecord, scope: Scope) -> State:
        """Record the carried task run, and those inside it, as this execution's; the state it ended in."""
        assert self.plan is not None
        ids: dict[str, str] = {}
        for original in (carried, *self.plan.inside.get(carried.id, [])):
            parent = scope.parent_id if original is carried else ids.get(original.parent_id or "", scope.parent_id)
            record = replace(original, id=self.data.new_id(), execution_id=self.data.request.id, parent_id=parent)
            ids[original.id] = record.id
            if original is carried:
                message = (
                    f"carried over from execution {self.plan.original_id}: not run again (it ended "
                    f"{carried.state.value} there before task '{self.plan.restart.task_id}' started)"
                )
                self.t.log(record, "INFO", message)
            self.data.adopt(record)
            self.t.record(record, record.state)
        return carried.state


def _text(value: object) -> str | None:
    """A task run's value as its row keeps it (loop values are text already)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _creation_order(record: TaskRunRecord) -> tuple[int, str]:
    """Task run ids end with their number in the execution (`ExecutionData.new_id`): creation order."""
    number = record.id.rsplit("-", 1)[-1]
    return (int(number) if number.isdigit() else 0), record.id
