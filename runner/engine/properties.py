"""A task's properties as the engine renders them, derived once per task object.

A parsed revision is shared by every execution of it (the control plane caches it), so its tasks' dumped
properties are too: `task.model_dump` and the walk that finds templates run once per task, not once per task
run. A task whose properties hold no template needs no variables built and nothing rendered: it gets a fresh
copy of them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from runner.expressions.pebble import is_template
from runner.plugin import Task

KEPT = 16_384
"""Task objects whose properties are kept (a revision's tasks; the oldest go first)."""
_NOT_PROPERTIES = ("errors", "finally")


class TaskProperties:
    """The properties of tasks, as YAML gave them (with `type`, without `runIf`, `errors`, `finally`)."""

    def __init__(self, kept: int = KEPT) -> None:
        self._kept = kept
        self._lock = threading.Lock()
        self._by_task: OrderedDict[int, tuple[Task, dict[str, Any], bool]] = OrderedDict()

    def of(self, task: Task) -> tuple[dict[str, Any], bool]:
        """The task's properties (never to be changed: copy them) and whether any string in them is a template."""
        key = id(task)
        with self._lock:
            found = self._by_task.get(key)
            if found is not None and found[0] is task:
                self._by_task.move_to_end(key)
                return found[1], found[2]
        dumped = task.model_dump(by_alias=True, exclude_none=True, exclude={"runIf"})
        raw = {k: v for k, v in dumped.items() if k not in _NOT_PROPERTIES}
        templated = holds_template(raw)
        with self._lock:
            self._by_task[key] = (task, raw, templated)  # the task is held: its id is not reused meanwhile
            if len(self._by_task) > self._kept:
                self._by_task.popitem(last=False)
        return raw, templated


def holds_template(value: Any) -> bool:
    """Whether a string deep in `value` is a template (`runner.expressions.pebble.is_template`)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if is_template(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def copied(value: Any) -> Any:
    """A copy of plain data, deep through dicts and lists (what a render of it would give without templates)."""
    if isinstance(value, dict):
        return {k: copied(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [copied(v) for v in value]
    return value
