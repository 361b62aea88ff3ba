"""JSON Schema of a flow file, built from the registered plugins (for editors and CI linters)."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from runner.flow import Flow
from runner.plugin import SCHEMA_REF, Plugin
from runner.registry import Registry

SCHEMA_ID = "https://gitsync.dev/schema/flow.json"
_KIND_DEFS = {"task": "Task", "trigger": "Trigger", "condition": "Condition", "runner": "TaskRunner"}


def flow_schema(registry: Registry) -> dict[str, Any]:
    """One self-contained schema: the flow document, and a `type`-dispatched definition per plugin kind."""
    classes = registry.classes()
    models: list[tuple[type[Any], Any]] = [(Flow, "validation"), *((cls, "validation") for cls in classes)]
    refs, top = models_json_schema(models, ref_template="#/$defs/{model}")
    defs: dict[str, Any] = top.get("$defs", {})
    for kind, def_name in _KIND_DEFS.items():
        defs[def_name] = _dispatch(
            [cls for cls in classes if cls.kind == kind], refs, defs, require_id=kind in ("task", "trigger")
        )
    defs = _resolve_kind_refs(defs)
    root_ref = refs[(Flow, "validation")]["$ref"].rsplit("/", 1)[-1]
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID,
        "title": "gitsync flow (Kestra format)",
        **defs.pop(root_ref),
        "$defs": defs,
    }
    # TaskList's schema is shared by every task list; only the flow's own `tasks` must not be empty.
    schema["properties"]["tasks"]["minItems"] = 1
    return schema


def _dispatch(
    classes: list[type[Plugin]], refs: dict[Any, Any], defs: dict[str, Any], require_id: bool
) -> dict[str, Any]:
    names: list[str] = []
    branches = []
    for cls in classes:
        accepted = [cls.type_name, *cls.aliases]
        names.extend(accepted)
        ref = refs[(cls, "validation")]["$ref"]
        definition = defs[ref.rsplit("/", 1)[-1]]
        definition.setdefault("properties", {})["type"] = {
            "type": "string",
            "enum": accepted,
            "description": f"{cls.type_name}" + (f" (legacy names: {', '.join(cls.aliases)})" if cls.aliases else ""),
        }
        branches.append(
            {"if": {"properties": {"type": {"enum": accepted}}, "required": ["type"]}, "then": {"$ref": ref}}
        )
    return {
        "type": "object",
        "required": ["id", "type"] if require_id else ["type"],
        "properties": {"type": {"type": "string", "enum": sorted(names)}},
        "allOf": branches,
    }


def _resolve_kind_refs(node: Any) -> Any:
    """Replace the plugin-kind markers left by runner.plugin with real $refs to the dispatch definitions."""
    if isinstance(node, dict):
        if SCHEMA_REF in node:
            return {"$ref": f"#/$defs/{_KIND_DEFS.get(node[SCHEMA_REF], node[SCHEMA_REF])}"}
        return {key: _resolve_kind_refs(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve_kind_refs(item) for item in node]
    return node
