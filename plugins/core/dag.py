"""`Dag`: run tasks in the order their `dependsOn` edges allow."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import Field, model_validator

from plugins.values import Options
from runner.engine.context import FlowableContext, Outcome, Scope
from runner.engine.records import TaskRunRecord
from runner.plugin import FlowableTask, Kind, Path, Shape, TaskRef
from runner.states import State, combine


class DagTask(Options):
    """One node of the graph: a task and the ids of the nodes it waits for."""

    task: TaskRef
    """The task (validated by its own type)."""
    dependsOn: list[str] | None = None
    """Ids of the dag's tasks that must end before this one starts."""


class Dag(FlowableTask):
    """Run tasks as a directed acyclic graph."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.Dag"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.flows.Dag",)
    plugin_slots: ClassVar[dict[str, tuple[Kind, Shape]]] = {
        "errors": ("task", "list"),
        "finally": ("task", "list"),
    }

    tasks: list[DagTask] = Field(min_length=1)
    """The nodes: `{task: {...}, dependsOn: [ids]}`."""
    concurrent: int = Field(default=0, ge=0)
    """How many tasks run at once (0: no limit)."""

    @classmethod
    def nested_plugin_paths(cls, raw: dict[str, Any]) -> Iterator[tuple[Path, Kind]]:
        yield from super().nested_plugin_paths(raw)
        tasks = raw.get("tasks")
        if isinstance(tasks, list):
            for i, node in enumerate(tasks):
                if isinstance(node, dict) and isinstance(node.get("task"), dict):
                    yield ("tasks", i, "task"), "task"

    @model_validator(mode="after")
    def _edges(self) -> Dag:
        graph = {_task_id(node.task): node.dependsOn or [] for node in self.tasks}
        for task_id, deps in graph.items():
            missing = [dep for dep in deps if dep not in graph]
            if missing:
                raise ValueError(f"task {task_id!r} depends on unknown task(s) {missing} (not in this dag)")
        cycle = _find_cycle(graph)
        if cycle:
            raise ValueError("cyclic dependency: " + " -> ".join(cycle))
        return self

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        """Run each task when the tasks it depends on have succeeded; `concurrent` at a time (0: no limit)."""
        inner = scope.child(record.id, self.id)
        nodes = {node.task.id: node for node in self.tasks}
        states: dict[str, State] = {}
        condition = threading.Condition()
        limit = self.concurrent or len(nodes)
        running = 0
        done = (State.SUCCESS, State.WARNING, State.SKIPPED)

        def ready() -> list[str]:
            return [
                ident
                for ident, node in nodes.items()
                if ident not in states and all(states.get(dep) in done for dep in node.dependsOn or [])
            ]

        def work(ident: str) -> None:
            nonlocal running
            state = ctx.run_task(nodes[ident].task, inner)
            with condition:
                states[ident] = state
                running -= 1
                condition.notify_all()

        with condition:
            while True:
                failed = any(s.is_failure for s in states.values())
                candidates = [] if failed or ctx.cancelled.is_set() else ready()
                for ident in candidates[: max(0, limit - running)]:
                    states[ident] = State.RUNNING
                    running += 1
                    threading.Thread(target=work, args=(ident,), daemon=True).start()
                if running == 0:
                    break
                condition.wait()
        return combine(s for s in states.values() if s != State.RUNNING)


def _task_id(task: Any) -> str:
    # The validator hands over each nested task already validated (a model), or the raw mapping if invalid.
    value = task.get("id") if isinstance(task, dict) else getattr(task, "id", None)
    return str(value) if value is not None else ""


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A path that closes a cycle, or None (depth-first search with colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return None
