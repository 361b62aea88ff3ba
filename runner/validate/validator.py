"""Validate one flow document (already parsed YAML) against the flow model and the plugin registry.

Pure: no files, no I/O. Problems are returned as `Issue`s located by their path in the document
(`("tasks", 2, "commands")`); the loader turns a path into a file, line and column.

One module over 500 lines on purpose: it holds one thing, the validation pass over a flow document (the walk
through plugin slots and the translation of pydantic errors into `Issue`s, which share the document paths).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from runner.flow import Flow
from runner.plugin import Kind, Path, Plugin
from runner.registry import Registry, RegistryError
from runner.types import PATTERN_HINTS

Severity = Literal["error", "warning"]
RESERVED_FLOW_IDS = frozenset(
    {"pause", "resume", "force-run", "change-status", "kill", "executions", "search", "source", "disable", "enable"}
)
_EXAMPLE = {
    "task": "io.kestra.plugin.core.log.Log",
    "trigger": "io.kestra.plugin.core.trigger.Schedule",
    "condition": "io.kestra.plugin.core.condition.ExecutionStatus",
    "runner": "io.kestra.plugin.core.runner.Process",
}
_KIND_WORD = {"task": "task", "trigger": "trigger", "condition": "condition", "runner": "task runner"}
_TOP_LEVEL_SLOTS: dict[str, Kind] = {
    "tasks": "task",
    "errors": "task",
    "finally": "task",
    "afterExecution": "task",
    "triggers": "trigger",
}
_OUTPUTS_REF = re.compile(r"(?<![\w.])outputs\s*(?:\.\s*([A-Za-z0-9_][\w-]*)|\[\s*['\"]([^'\"]+)['\"]\s*\])")
_EXPRESSION = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)


MAX_TASK_DEPTH = 100
"""How deep tasks may nest (a flowable's tasks inside a flowable's tasks…): a top-level task is level 1. A deeper
flow is refused by `validate` (the engine walks the tree recursively, and refuses deeper nesting too)."""


@dataclass(frozen=True)
class Issue:
    loc: Path
    message: str
    severity: Severity = "error"
    at_key: bool = True
    """True: point at the key `loc` ends with; False: `loc` names the mapping that lacks something."""
    related: Path | None = None
    """Another place the message refers to (the first definition of a duplicate id)."""


@dataclass
class Validated:
    flow: Flow | None
    issues: list[Issue] = field(default_factory=list)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]


def validate_flow(data: Any, registry: Registry, namespace_prefix: str | None = None) -> Validated:
    """Validate a parsed flow document; the flow is returned only when there is no error."""
    walker = _Walker(registry)
    if not isinstance(data, dict):
        held = "is empty" if data is None else f"holds {_describe(data)}"
        walker.error((), f"a flow file must be a mapping with id, namespace and tasks; this file {held}", False)
        return Validated(None, walker.issues)
    too_deep = _too_deep(data)
    if too_deep is not None:  # walked no further: validating it would recurse as deep as it nests
        walker.error(*too_deep)
        return Validated(None, walker.issues)
    walker.defaults = _plugin_defaults(data)
    source = data  # stays the YAML data: instances replace its blocks only in the copy
    data = dict(data)
    copied: set[Path] = set()
    for name, kind in _TOP_LEVEL_SLOTS.items():
        items = data.get(name)
        if isinstance(items, list):
            for i, item in enumerate(items):
                _set_path(data, (name, i), walker.plugin(item, (name, i), kind), copied)
    listeners = data.get("listeners")
    if isinstance(listeners, list):
        for li, listener in enumerate(listeners):
            if isinstance(listener, dict) and isinstance(listener.get("tasks"), list):
                for i, item in enumerate(listener["tasks"]):
                    path = ("listeners", li, "tasks", i)
                    _set_path(data, path, walker.plugin(item, path, "task"), copied)
    walker.inert(Flow.inert, data, ())
    flow = walker.model(Flow, data, ())
    _check_flow_rules(walker, data, namespace_prefix)
    _check_output_references(walker, source)
    if flow is not None:
        _check_recursive_subflows(walker, flow)
    if walker.has_errors:
        return Validated(None, walker.issues)
    return Validated(flow, walker.issues)


class _Walker:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.issues: list[Issue] = []
        self.defaults: list[dict[str, Any]] = []
        self.task_ids: dict[str, Path] = {}
        self.trigger_ids: dict[str, Path] = {}
        self.subflows: list[tuple[Path, Plugin]] = []
        self.unknown_types = False

    @property
    def has_errors(self) -> bool:
        return any(i.severity == "error" for i in self.issues)

    def error(self, loc: Path, message: str, at_key: bool = True, related: Path | None = None) -> None:
        self.issues.append(Issue(loc, message, "error", at_key, related))

    def warning(self, loc: Path, message: str) -> None:
        self.issues.append(Issue(loc, message, "warning"))

    def plugin(self, raw: Any, loc: Path, kind: Kind) -> Any:
        """Validate one typed block and its nested blocks; return the instance, or `raw` if invalid."""
        if isinstance(raw, Plugin):  # the same YAML alias seen twice
            self._record_id(raw.__dict__.get("id"), loc, kind)
            return raw
        word = _KIND_WORD[kind]
        if not isinstance(raw, dict):
            self.error(loc, f"each {word} must be a mapping with an id and a type, not {_describe(raw)}", False)
            return raw
        self._record_id(raw.get("id"), loc, kind)
        type_name = raw.get("type")
        if type_name is None:
            ident = raw.get("id")
            named = f"{word} {ident!r}" if isinstance(ident, str) else word
            self.error(
                loc, f"{named} has no 'type' (every {word} names its plugin, e.g. type: {_EXAMPLE[kind]})", False
            )
            return raw
        if not isinstance(type_name, str):
            self.error((*loc, "type"), f"'type' must be a string, not {_describe(type_name)}")
            return raw
        try:
            cls = self.registry.lookup(type_name)
        except RegistryError as exc:  # an installed plugin that cannot be imported: this block cannot be checked
            self.error((*loc, "type"), str(exc))
            self.unknown_types = True
            return raw
        if cls is None or cls.kind != kind:
            self.error((*loc, "type"), self._unknown_type(type_name, kind, cls))
            self.unknown_types = True
            return raw
        if type_name != cls.type_name and type_name.lower() != cls.type_name.lower():
            self.warning((*loc, "type"), f"legacy type name {type_name!r} is replaced by {cls.type_name}")
        raw = _apply_defaults(raw, cls, type_name, self.defaults)
        copied: set[Path] = set()
        for path, child_kind in cls.nested_plugin_paths(raw):
            child = self.plugin(_get_path(raw, path), loc + path, child_kind)
            _set_path(raw, path, child, copied)
        self.inert(cls.inert, raw, loc)
        instance = self.model(cls, raw, loc)
        if instance is not None and kind == "task" and {"flowId", "namespace"} <= cls.model_fields.keys():
            self.subflows.append((loc, instance))
        return instance if instance is not None else raw

    def model(self, cls: type[BaseModel], raw: dict[str, Any], loc: Path) -> Any:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            for issue in translate_errors(exc, raw, loc, cls):
                self.issues.append(issue)
            return None

    def inert(self, inert: dict[str, str], raw: dict[str, Any], loc: Path) -> None:
        for key, why in inert.items():
            if raw.get(key) not in (None, False, [], {}):
                self.warning((*loc, key), f"'{key}' is accepted but not acted on: {why}")

    def _record_id(self, value: Any, loc: Path, kind: Kind) -> None:
        if kind not in ("task", "trigger") or not isinstance(value, str):
            return
        seen = self.task_ids if kind == "task" else self.trigger_ids
        if value in seen:
            self.error((*loc, "id"), f"duplicate {kind} id {value!r}", related=(*seen[value], "id"))
        else:
            seen[value] = loc

    def _unknown_type(self, type_name: str, kind: Kind, found: type[Plugin] | None) -> str:
        word = _KIND_WORD[kind]
        if found is not None:
            found_word = _KIND_WORD[found.kind]
            where = " (move it under triggers:)" if found.kind == "trigger" and kind == "task" else ""
            return f"{type_name!r} is a {found_word} type, not a {word} type{where}"
        message = f"unknown {word} type {type_name!r}"
        suggestions = [s for s in self.registry.suggest(type_name, kind) if _same_leaf(s, type_name)]
        if suggestions:
            return f"{message} (did you mean {' or '.join(suggestions)}?)"
        return f"{message} (no installed plugin provides it)"


def _same_leaf(known: str, given: str) -> bool:
    """A suggestion must resemble the class name itself, not just share the io.kestra.plugin. prefix."""
    leaf = known.rsplit(".", 1)[-1].lower()
    return difflib.SequenceMatcher(None, leaf, given.rsplit(".", 1)[-1].lower()).ratio() >= 0.6


def _plugin_defaults(data: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key in ("pluginDefaults", "taskDefaults"):
        entries = data.get(key)
        if isinstance(entries, list):
            for entry in entries:
                if (
                    isinstance(entry, dict)
                    and isinstance(entry.get("type"), str)
                    and isinstance(entry.get("values"), dict)
                ):
                    out.append(entry)
    return out


def _apply_defaults(
    raw: dict[str, Any], cls: type[Plugin], type_name: str, defaults: list[dict[str, Any]]
) -> dict[str, Any]:
    """Merge the flow's pluginDefaults matching this type (or a package prefix of it) into `raw`."""
    names = {type_name.lower(), cls.type_name.lower()}
    merged = dict(raw)
    for entry in defaults:
        prefix = entry["type"].lower()
        if any(name == prefix or name.startswith(prefix + ".") for name in names):
            if entry.get("forced"):
                merged = _deep_merge(merged, entry["values"])
            else:
                merged = _deep_merge(entry["values"], merged)
    return merged


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _get_path(root: Any, path: Path) -> Any:
    for part in path:
        root = root[part]
    return root


def _set_path(root: Any, path: Path, value: Any, copied: set[Path]) -> None:
    """Set `value` at `path`, copying each container on the way once, so shared YAML aliases stay intact."""
    node = root
    for depth, part in enumerate(path[:-1]):
        prefix = path[: depth + 1]
        child = node[part]
        if prefix not in copied:
            child = list(child) if isinstance(child, list) else dict(child)
            node[part] = child
            copied.add(prefix)
        node = child
    node[path[-1]] = value


def _describe(value: Any) -> str:
    """A value as a message shows it: its kind for containers, a short repr for scalars."""
    if value is None:
        return "an empty value"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, int | float):
        return repr(value)
    return type(value).__name__


# ---------------------------------------------------------------------------------------------------------------
# Flow-wide rules


def _too_deep(data: dict[str, Any]) -> tuple[Path, str] | None:
    """The first task nested deeper than MAX_TASK_DEPTH (a mapping with an `id` and a `type` counts as a level),
    as (its location, the message); walked without recursion, so any depth is safe to check."""
    stack: list[tuple[Any, Path, int]] = [(data, (), 0)]
    seen: set[tuple[int, int]] = set()
    while stack:
        node, loc, depth = stack.pop()
        if isinstance(node, dict | list):
            if (id(node), depth) in seen:  # a YAML alias repeats a node: walked once per depth it stands at
                continue
            seen.add((id(node), depth))
        if isinstance(node, dict):
            if loc and isinstance(node.get("id"), str) and isinstance(node.get("type"), str):
                depth += 1
                if depth > MAX_TASK_DEPTH:
                    return (
                        (*loc, "id"),
                        f"task {node['id']!r} is nested {depth} levels deep; tasks may nest at most "
                        f"{MAX_TASK_DEPTH} levels (flowable tasks inside flowable tasks): flatten the flow or "
                        "move a part into a subflow",
                    )
            stack.extend((value, (*loc, key), depth) for key, value in node.items() if isinstance(key, str | int))
        elif isinstance(node, list):
            stack.extend((value, (*loc, i), depth) for i, value in enumerate(node))
    return None


def _check_flow_rules(walker: _Walker, data: dict[str, Any], namespace_prefix: str | None) -> None:
    namespace = data.get("namespace")
    flow_id = data.get("id")
    if isinstance(flow_id, str) and flow_id.lower() in RESERVED_FLOW_IDS:
        walker.error(("id",), f"flow id {flow_id!r} is reserved by Kestra's API; choose another id")
    if isinstance(namespace, str):
        if namespace_prefix and namespace != namespace_prefix and not namespace.startswith(namespace_prefix + "."):
            walker.error(
                ("namespace",),
                f"namespace {namespace!r} is outside this source's prefix {namespace_prefix!r} "
                f"(use {namespace_prefix!r} or a child such as '{namespace_prefix}.team')",
            )
        if namespace == "system" or namespace.startswith("system."):
            walker.warning(("namespace",), "the 'system' namespace is reserved for system flows")
    for key, adapter_name in (("inputs", "input"), ("outputs", "output")):
        items = data.get(key)
        if isinstance(items, list):
            seen: dict[str, Path] = {}
            for i, item in enumerate(items):
                ident = item.get("id", item.get("name")) if isinstance(item, dict) else None
                if isinstance(ident, str):
                    if ident in seen:
                        walker.error(
                            (key, i, "id"), f"duplicate {adapter_name} id {ident!r}", related=(*seen[ident], "id")
                        )
                    else:
                        seen[ident] = (key, i)


_OUTPUT_SCOPES = ("tasks", "errors", "finally", "afterExecution", "outputs")
"""Where `outputs` means this flow's task outputs (in a Flow trigger it means the triggering execution's)."""
_GENERATED_SUFFIXES = ("_split", "_items", "_merge")
"""ForEachItem adds task runs named after it: `<id>_split`, `<id>_items`, `<id>_merge`."""


def _check_output_references(walker: _Walker, data: dict[str, Any]) -> None:
    """`{{ outputs.X }}` should name a task of this flow: a warning when it does not, since Kestra accepts such flows
    (the expression may be covered by `??`, sit in a `runIf`, or be meant to fail); when nothing covers it, the task
    fails when it runs, as in Kestra.

    Inside a Subflow task's `outputs` map, `outputs.X` names a task of the child flow: not checked here. Skipped when
    a task type is unknown: its children's ids (and the task runs it generates) are unknown too.
    """
    if walker.unknown_types:
        return
    known = set(walker.task_ids)
    known |= {task_id + suffix for task_id in walker.task_ids for suffix in _GENERATED_SUFFIXES}
    child_scopes = [(*loc, "outputs") for loc, _ in walker.subflows]
    for loc, text in _strings_mentioning_outputs(data):
        if "{{" not in text and "{%" not in text:
            continue
        if any(loc[: len(scope)] == scope for scope in child_scopes):
            continue
        for match in _EXPRESSION.finditer(text):
            body = match.group(1) if match.group(1) is not None else match.group(2)
            for ref in _OUTPUTS_REF.finditer(body):
                # `outputs.a-b` is Pebble for outputs.a minus b; only the bracket form names a task 'a-b'
                name = ref.group(2) or ref.group(1).split("-", 1)[0]
                if name in known:
                    continue
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                walker.warning(
                    loc,
                    f"expression refers to outputs.{name}, but this flow has no task {name!r}{hint}; "
                    "the task fails when it runs unless the expression covers it (`??`, `is defined`)",
                )


def _strings_mentioning_outputs(data: dict[str, Any]) -> Iterator[tuple[Path, str]]:
    """Strings holding the word `outputs` in the scopes where it names this flow's tasks, with their paths.

    Walks the YAML data (not the validated instances, which add every default) without recursion.
    """
    # repr() runs in C: most flows never mention outputs in a scope, and then nothing is walked.
    stack: list[tuple[Path, Any]] = [
        ((scope,), data[scope]) for scope in _OUTPUT_SCOPES if scope in data and "outputs" in repr(data[scope])
    ]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str):
            if "outputs" in value:
                yield loc, value
        elif isinstance(value, dict):
            stack.extend(((*loc, key), item) for key, item in value.items() if isinstance(item, str | dict | list))
        elif isinstance(value, list):
            stack.extend(((*loc, i), item) for i, item in enumerate(value) if isinstance(item, str | dict | list))


def _check_recursive_subflows(walker: _Walker, flow: Flow) -> None:
    for loc, task in walker.subflows:
        if getattr(task, "namespace", None) == flow.namespace and getattr(task, "flowId", None) == flow.id:
            walker.error(loc, f"task {task.__dict__.get('id')!r} calls its own flow {flow.uid} (recursive call)")


# ---------------------------------------------------------------------------------------------------------------
# pydantic errors -> issues


def _has_child(node: Any, part: str | int) -> bool:
    """Whether `node[part]` is a key of a mapping or an index inside a list."""
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def translate_errors(exc: ValidationError, raw: Any, loc: Path, cls: type[BaseModel] | None = None) -> list[Issue]:
    """Turn pydantic's errors into one readable issue per offending place."""
    grouped: dict[tuple[Path, str], list[dict[str, Any]]] = {}
    for details in exc.errors(include_url=False):
        err: dict[str, Any] = dict(details)
        kind = err["type"]
        path = _clean_loc(raw, tuple(err["loc"]), keep_last=kind == "missing")
        grouped.setdefault((path, "missing" if kind == "missing" else "value"), []).append(err)
    issues: list[Issue] = []
    missing: dict[Path, Issue] = {}
    meant: set[Path] = set()
    """Missing properties that an unknown property's did-you-mean already names (`taks:` -> tasks)."""
    for (path, group_kind), errors in grouped.items():
        err = errors[0]
        kind = err["type"]
        full = loc + path
        if group_kind == "missing":
            missing[full] = Issue(full[:-1], f"missing required property '{path[-1]}'", at_key=False)
            issues.append(missing[full])
        elif kind == "extra_forbidden":
            message, suggestion = _unknown_property(path, cls)
            if suggestion is not None:
                meant.add((*full[:-1], suggestion))
            issues.append(Issue(full, message))
        elif kind == "union_tag_invalid":
            issues.append(Issue((*full, "type"), _unknown_tag(err)))
        elif kind == "union_tag_not_found":
            issues.append(Issue(full, "missing required property 'type'", at_key=False))
        else:
            message = _union_message(errors) if len(errors) > 1 else _message(err, full)
            if message == "must be a list of tasks" and full and full[-1] in _NOT_TASKS:
                message = f"must be a list of {_NOT_TASKS[str(full[-1])]}"  # runner.plugin words every list so
            pointed = _point_at_property(raw, path, err, message)
            if pointed != path:  # the location names the property now; the message need not repeat it
                message = message.split(" ", 1)[1].lstrip(":")
            issues.append(Issue(loc + pointed, message))
    dropped = {id(missing[path]) for path in meant if path in missing}
    return [i for i in issues if id(i) not in dropped]


_NOT_TASKS = {"triggers": "triggers", "conditions": "conditions", "scheduleConditions": "conditions"}


def _point_at_property(raw: Any, path: Path, err: dict[str, Any], message: str) -> Path:
    """A rule checked on a whole block (`cron '61 * * * *': …`, `defaults does not fit …`) points at the
    property its message starts with, not at the block."""
    if err["type"] != "value_error":
        return path
    node: Any = raw
    for part in path:
        if not _has_child(node, part):
            return path
        node = node[part]
    first = message.split(" ", 1)[0].strip("'\":,")
    return (*path, first) if isinstance(node, dict) and first in node else path


def _unknown_tag(err: dict[str, Any]) -> str:
    ctx = err.get("ctx", {})
    tags = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
    close = difflib.get_close_matches(str(ctx.get("tag", "")).upper(), tags, n=1, cutoff=0.5)
    if not close:
        close = [t for t in tags if t.startswith(str(ctx.get("tag", "")).upper()[:3])][:1]
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown type {ctx.get('tag')!r}{hint}; expected one of {', '.join(tags)}"


def _clean_loc(raw: Any, loc: Path, keep_last: bool) -> Path:
    """Drop the parts of a pydantic location that name a union member rather than a key in the data."""
    out: list[str | int] = []
    node = raw
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if _has_child(node, part):
            out.append(part)
            node = node[part]
        elif isinstance(node, BaseModel) and isinstance(part, str) and part in node.__dict__:
            out.append(part)
            node = node.__dict__[part]
        elif last and keep_last:
            out.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and _is_alias_key(node, part):
            out.append(part)
            node = None
        # else: a union member or tag label: skip it
    return tuple(out)


def _is_alias_key(node: dict[str, Any], part: str) -> bool:
    return part.endswith("_") and part[:-1] in node


def _unknown_property(path: Path, cls: type[BaseModel] | None) -> tuple[str, str | None]:
    """The message for a key the model does not know, and the property it probably meant."""
    name = path[-1]
    message = f"unknown property '{name}'"
    owner = _model_at(cls, path[:-1])
    suggestion = None
    if owner is not None:
        fields = sorted({f.alias or n for n, f in owner.model_fields.items()} - {"type"})
        close = difflib.get_close_matches(str(name), fields, n=1, cutoff=0.7)
        if close:
            suggestion = close[0]
            message += f" (did you mean '{suggestion}'?)"
        type_name = getattr(owner, "type_name", "")
        if type_name:
            message += f" for {type_name}"
    return message, suggestion


def _model_at(cls: type[BaseModel] | None, path: Path) -> type[BaseModel] | None:
    for part in path:
        if cls is None or not isinstance(part, str):
            return None if cls is None else (cls if isinstance(part, int) else None)
        field_info = cls.model_fields.get(part) or next((f for f in cls.model_fields.values() if f.alias == part), None)
        annotation = getattr(field_info, "annotation", None)
        cls = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return cls


_EXPECTED = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
}
"""pydantic's type errors as the kind of YAML value that was expected."""


def _expected(err: dict[str, Any]) -> str | None:
    kind = err["type"]
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    if kind in ("literal_error", "enum"):
        return f"one of {err.get('ctx', {}).get('expected', '')}"
    return None


def _message(err: dict[str, Any], full: Path = ()) -> str:
    """One pydantic error as `expected …, got …` or `must …`, naming the offending value briefly."""
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    value = err.get("input")
    ctx = err.get("ctx", {})
    kind = err["type"]
    expected = _expected(err)
    if expected is not None:
        return f"expected {expected}, got {_describe(value)}"
    if kind == "string_pattern_mismatch":
        hint = PATTERN_HINTS.get(str(ctx.get("pattern")), f"must match {ctx.get('pattern')}")
        return f"{_describe(value)} is not valid: {hint}"
    if kind == "string_too_long":
        return f"is {len(value or '')} characters long; the limit is {ctx.get('max_length')}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_short":
        field = full[-1] if full else ""
        if field in ("tasks", "then") and ctx.get("min_length") == 1:
            return f"'{field}' is empty; it needs at least one task"
        return f"needs at least {ctx.get('min_length')} item(s), has {ctx.get('actual_length')}"
    bound = _BOUNDS.get(kind)
    if bound is not None:
        word, key = bound
        return f"must be {word} {ctx.get(key)}, got {_describe(value)}"
    text = _lower_first(msg).replace("input should be", "expected", 1)
    return text if isinstance(value, dict | list) or value is None else f"{text}, got {_describe(value)}"


_BOUNDS = {
    "greater_than": ("greater than", "gt"),
    "greater_than_equal": ("at least", "ge"),
    "less_than": ("less than", "lt"),
    "less_than_equal": ("at most", "le"),
}


def _union_message(errors: list[dict[str, Any]]) -> str:
    """One message for a value that matched none of a union's members (e.g. an int or an expression)."""
    expected: list[str] = []
    value = errors[0].get("input")
    for err in errors:
        msg = str(err["msg"])
        if "not an expression" in msg:
            text = "a {{ expression }}"
        elif msg.startswith("Value error, ") or _expected(err) is None:
            return _message(err)  # the value has the right kind but breaks a rule: say which
        else:
            text = _expected(err) or ""
        if text not in expected:
            expected.append(text)
    return f"expected {' or '.join(expected)}, got {_describe(value)}"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
