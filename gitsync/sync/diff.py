"""What differs between two versions of a flow, a task or a trigger: normalised data and leaf-level changes. Pure.

Each side is normalised first (defaults dropped, every plugin's `type` canonical), so a change of formatting,
comments, an explicit default or a legacy type name is no change. Tasks are matched by id wherever they sit in
the tree (ids are unique in a flow); nested task slots are compared as lists of ids, each child on its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from runner.flow import Flow
from runner.plugin import Plugin

ItemChangeKind = Literal["added", "changed", "removed"]
_TASK_SLOTS = ("tasks", "errors", "finally", "afterExecution")
_ABSENT: Any = None  # a property missing on one side is shown as null


@dataclass(frozen=True)
class PropertyChange:
    path: str
    """Dotted path inside the flow, task or trigger: `inputs[0].defaults`, `retry.interval`."""
    old: Any
    new: Any

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class TaskChange:
    id: str
    change: ItemChangeKind
    type: str
    properties: tuple[PropertyChange, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "change": self.change,
            "type": self.type,
            "properties": [p.as_dict() for p in self.properties],
        }


# ---------------------------------------------------------------------------------------------------------------
# Normalised data


def normalise(model: BaseModel) -> Any:
    """JSON-ready data of a validated model: defaults dropped, every plugin's `type` canonical."""
    dumped = model.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    _canonical_types(model, dumped)
    return dumped


def _canonical_types(value: Any, dumped: Any) -> None:
    if isinstance(value, BaseModel) and isinstance(dumped, dict):
        if isinstance(value, Plugin) and type(value).type_name:
            dumped["type"] = type(value).type_name
        for name, info in type(value).model_fields.items():
            key = info.serialization_alias or info.alias or name
            if key in dumped:
                _canonical_types(value.__dict__.get(name), dumped[key])
    elif isinstance(value, list | tuple) and isinstance(dumped, list) and len(value) == len(dumped):
        for item, out in zip(value, dumped, strict=True):
            _canonical_types(item, out)
    elif isinstance(value, dict) and isinstance(dumped, dict):
        for key, item in value.items():
            if str(key) in dumped:
                _canonical_types(item, dumped[str(key)])


def flow_properties(flow: Flow) -> dict[str, Any]:
    """Flow-level data to compare: task lists become lists of ids (tasks are compared one by one), no triggers."""
    data = normalise(flow)
    for slot in _TASK_SLOTS:
        if slot in data:
            data[slot] = [item.get("id") for item in data[slot] if isinstance(item, dict)]
    data.pop("triggers", None)
    return data


def _slot_value(model: BaseModel, slot: str) -> Any:
    for name, info in type(model).model_fields.items():
        if (info.alias or name) == slot:
            return model.__dict__.get(name)
    return None


def _children(value: Any, shape: str) -> Iterator[Any]:
    if shape == "list" and isinstance(value, list):
        yield from value
    elif shape == "one" and value is not None:
        yield value
    elif shape == "map" and isinstance(value, dict):
        yield from value.values()
    elif shape == "map_of_lists" and isinstance(value, dict):
        for items in value.values():
            if isinstance(items, list):
                yield from items


def iter_tasks(flow: Flow) -> Iterator[Plugin]:
    """Every task of the flow, nested ones included (flowable children, errors, finally, afterExecution)."""
    stack: list[Any] = []
    for slot in reversed(_TASK_SLOTS):
        stack.extend(reversed(_slot_value(flow, slot) or []))
    while stack:
        task = stack.pop()
        if not isinstance(task, Plugin):
            continue
        yield task
        nested: list[Any] = []
        for slot, (kind, shape) in type(task).plugin_slots.items():
            if kind == "task":
                nested.extend(_children(_slot_value(task, slot), shape))
        stack.extend(reversed(nested))


def task_data(task: Plugin) -> dict[str, Any]:
    """A task's properties, with nested task slots replaced by their ids (children are compared on their own)."""
    data = normalise(task)
    for slot, (kind, shape) in type(task).plugin_slots.items():
        if kind == "task" and slot in data:
            data[slot] = _child_ids(data[slot], shape)
    return data


def _child_ids(value: Any, shape: str) -> Any:
    def ident(item: Any) -> Any:
        return item.get("id") if isinstance(item, dict) else item

    if shape == "list" and isinstance(value, list):
        return [ident(v) for v in value]
    if shape == "one":
        return ident(value)
    if shape == "map" and isinstance(value, dict):
        return {k: ident(v) for k, v in value.items()}
    if shape == "map_of_lists" and isinstance(value, dict):
        return {k: [ident(v) for v in items] if isinstance(items, list) else items for k, items in value.items()}
    return value


def by_id(items: Iterator[Plugin] | Sequence[Any]) -> dict[str, Plugin]:
    out: dict[str, Plugin] = {}
    for item in items:
        ident = getattr(item, "id", None)
        if isinstance(item, Plugin) and isinstance(ident, str):
            out.setdefault(ident, item)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Diffs


def diff_values(old: Any, new: Any, path: str = "") -> list[PropertyChange]:
    """Leaf-level differences as dotted paths; lists are compared whole unless both hold as many mappings."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[PropertyChange] = []
        keys = list(old) + [k for k in new if k not in old]
        for key in keys:
            sub = f"{path}.{key}" if path else str(key)
            out.extend(diff_values(old.get(key, _ABSENT), new.get(key, _ABSENT), sub))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and _all_mappings(old + new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out.extend(diff_values(a, b, f"{path}[{i}]"))
        return out
    return [PropertyChange(path, old, new)]


def _all_mappings(items: list[Any]) -> bool:
    return all(isinstance(item, dict) for item in items)


def diff_tasks(old: Flow, new: Flow) -> list[TaskChange]:
    """Tasks added, removed and changed, matched by id wherever they sit in the tree (ids are flow-unique)."""
    before, after = by_id(iter_tasks(old)), by_id(iter_tasks(new))
    out: list[TaskChange] = []
    for ident in sorted(set(before) | set(after)):
        a, b = before.get(ident), after.get(ident)
        if a is None and b is not None:
            out.append(TaskChange(ident, "added", type(b).type_name or b.type))
        elif b is None and a is not None:
            out.append(TaskChange(ident, "removed", type(a).type_name or a.type))
        elif a is not None and b is not None:
            changes = diff_values(task_data(a), task_data(b))
            if changes:
                out.append(TaskChange(ident, "changed", type(b).type_name or b.type, tuple(changes)))
    return out


@dataclass(frozen=True)
class NamespaceFileChange:
    """A namespace file that differs between base and head (`path` relative to its namespace's folder)."""

    namespace: str
    path: str
    change: ItemChangeKind

    @property
    def name(self) -> str:
        return f"{self.namespace}/{self.path}" if self.namespace else self.path

    def as_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "path": self.path, "change": self.change}


def namespace_file_changes(old: Mapping[str, str], new: Mapping[str, str]) -> list[NamespaceFileChange]:
    """What differs between two listings of the namespace files folder (`<namespace>/<path>` -> blob id), sorted.

    A file directly in the folder belongs to no namespace: its namespace is ''."""
    out: list[NamespaceFileChange] = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        change: ItemChangeKind = "added" if before is None else "removed" if after is None else "changed"
        namespace, _, path = key.partition("/") if "/" in key else ("", "", key)
        out.append(NamespaceFileChange(namespace, path, change))
    return out
