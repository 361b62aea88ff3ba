"""JSON Schema of a flow file, built from the registered plugins (for editors and CI linters).

A property's description is the docstring under its field in the class body (as pydantic's
`use_attribute_docstrings` reads them). The models do not ask pydantic to read them when each class is created
(that reads and parses every model's source, about 2 ms a class, on every start of every command); they are read
here, once per module, only when a schema is built.
"""

from __future__ import annotations

import ast
import inspect
import sys
from collections.abc import Iterable
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from runner.flow import Flow
from runner.plugin import SCHEMA_REF, Plugin
from runner.registry import Registry

SCHEMA_ID = "https://gitsync.dev/schema/flow.json"
_KIND_DEFS = {"task": "Task", "trigger": "Trigger", "condition": "Condition", "runner": "TaskRunner"}


def flow_schema(registry: Registry) -> dict[str, Any]:
    """One self-contained schema: the flow document, and a `type`-dispatched definition per plugin kind."""
    classes = registry.classes()
    describe_fields(_models_of(classes))
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


def describe_fields(models: Iterable[type[BaseModel]]) -> None:
    """Give each field without a description the docstring written under it (in its class or the nearest base
    that declares it), and rebuild the models pydantic had built already (their schemas hold their nested
    models' fields as they were), so every schema carries them."""
    models = list(models)
    described = False
    for model in models:
        for name, info in model.model_fields.items():
            if info.description is None:
                doc = next((d[name] for d in map(_docstrings, model.__mro__) if name in d), None)
                if doc is not None:
                    info.description = doc
                    described = True
    if described:
        built = [model for model in models if model.__pydantic_complete__]
        for _ in range(2):  # a built model nesting another one takes the other's new schema on the second pass
            for model in built:
                model.model_rebuild(force=True)


def _models_of(classes: Iterable[type[BaseModel]]) -> list[type[BaseModel]]:
    """Every model class of the flow document and of these plugins' packages (their option objects included)."""
    packages = {"runner", "plugins", *(cls.__module__.split(".")[0] for cls in classes)}
    out: list[type[BaseModel]] = []
    todo = list(BaseModel.__subclasses__())
    while todo:
        model = todo.pop()
        todo.extend(model.__subclasses__())
        if model.__module__.split(".")[0] in packages:
            out.append(model)
    return out


def _docstrings(cls: type) -> dict[str, str]:
    """Attribute docstrings of `cls`: `name: T` (or `name: T = value`) followed by a string literal."""
    module = sys.modules.get(cls.__module__)
    return _module_docstrings(module.__name__).get(cls.__qualname__, {}) if module is not None else {}


@cache
def _module_docstrings(module_name: str) -> dict[str, dict[str, str]]:
    """qualname -> {attribute: docstring} for every class in the module's source."""
    try:
        tree = ast.parse(inspect.getsource(sys.modules[module_name]))
    except (OSError, TypeError, SyntaxError):
        return {}
    out: dict[str, dict[str, str]] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                qualname = prefix + node.name
                docs: dict[str, str] = {}
                for statement, after in zip(node.body, [*node.body[1:], None], strict=True):
                    if (
                        isinstance(statement, ast.AnnAssign)
                        and isinstance(statement.target, ast.Name)
                        and isinstance(after, ast.Expr)
                        and isinstance(after.value, ast.Constant)
                        and isinstance(after.value.value, str)
                    ):
                        docs[statement.target.id] = inspect.cleandoc(after.value.value)
                out[qualname] = docs
                visit(node.body, qualname + ".")

    visit(tree.body, "")
    return out
