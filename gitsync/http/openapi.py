"""The OpenAPI 3.1 document of /api/v1, generated from the operations the app serves and the pydantic models their
handlers build (`gitsync.views.models`), their query parameters and request bodies: the document cannot drift
from what the handlers return, because both come from the same classes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from gitsync.http.queries import Query
from gitsync.views.models import Problem

Access = Literal["read", "write", "key", "open"]
"""read: open on loopback, the token otherwise; write: the token always; key: a secret in the path (a Webhook
trigger); open: no token (health, metrics, webhooks that carry a signature)."""

_REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"{(\w+)}")
_ERRORS = {
    400: "the request is malformed: the detail names the parameter and what would work",
    401: "no token, or the wrong one (Authorization: Bearer <token>)",
    403: "the API is disabled: no token is configured",
    404: "what the path names does not exist",
    409: "the execution is not in a state that allows this",
    413: "the body is over the limit",
    422: "the request is well formed but cannot be done (the detail says why)",
}


@dataclass(frozen=True)
class Operation:
    """One route of the API as the document describes it; `handler` is registered for it by `gitsync.http.api`."""

    method: str
    path: str
    summary: str
    tag: str
    response: Any = None
    """The model (or type) of the success body; None when the body is not JSON (`media_type`)."""
    status: int = 200
    query: type[Query] | None = None
    body: type[BaseModel] | None = None
    body_schema: Mapping[str, Any] | None = None
    """A request body described by hand, by media type (multipart FILE inputs, a webhook's free JSON)."""
    access: Access = "read"
    errors: tuple[int, ...] = (400, 404)
    media_type: str = "application/json"
    description: str = ""
    path_params: Mapping[str, str] = field(default_factory=dict)
    """A description per path parameter."""


def _models(kind: Any) -> Iterable[type[BaseModel]]:
    """The pydantic models in a type: itself, or those inside `list[...]`, `dict[..., ...]`."""
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        yield kind
    for arg in get_args(kind):
        yield from _models(arg)


def _model_refs(operations: Iterable[Operation]) -> tuple[dict[Any, str], dict[str, Any]]:
    """Each response, body or query model's reference, and the components that define them all."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "serialization")]
    for op in operations:
        uses: tuple[tuple[Any, JsonSchemaMode], ...] = (
            (op.response, "serialization"),
            (op.body, "validation"),
            (op.query, "validation"),
        )
        for kind, mode in uses:
            for model in _models(kind):
                if (model, mode) not in models:
                    models.append((model, mode))
    keys, defs = models_json_schema(models, ref_template=_REF)
    refs = {model: keys[(model, mode)]["$ref"] for model, mode in models}
    return refs, defs.get("$defs", {})


def _schema_of(kind: Any, refs: Mapping[Any, str]) -> dict[str, Any]:
    if kind in refs:
        return {"$ref": refs[kind]}
    return TypeAdapter(kind).json_schema(ref_template=_REF)


def _parameters(op: Operation, defs: Mapping[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
            "description": op.path_params.get(name, ""),
        }
        for name in _PATH_PARAM.findall(op.path)
    ]
    if op.query is not None:
        schema = defs[op.query.__name__]
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            prop = dict(prop)
            description = prop.pop("description", "")
            prop.pop("title", None)
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "schema": prop,
                    "description": description,
                    **({"style": "form", "explode": False} if prop.get("type") == "array" else {}),
                }
            )
    return params


def _security(op: Operation) -> list[dict[str, list[str]]] | None:
    if op.access == "write":
        return [{"bearer": []}]
    if op.access == "read":
        return [{}, {"bearer": []}]  # open on loopback; the token when the daemon listens elsewhere
    return []


def _operation(op: Operation, refs: Mapping[Any, str], defs: Mapping[str, Any]) -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": {"$ref": refs[Problem]}}}
    responses: dict[str, Any] = {}
    if op.response is None:
        responses[str(op.status)] = {"description": op.summary, "content": {op.media_type: {"schema": {}}}}
    else:
        content = {op.media_type: {"schema": _schema_of(op.response, refs)}}
        responses[str(op.status)] = {"description": op.summary, "content": content}
    errors = set(op.errors)
    if op.query is not None or op.body is not None:
        errors.add(400)
    if op.access == "write":
        errors |= {401, 403}
    elif op.access == "read":
        errors.add(401)
    if op.body is not None or op.body_schema is not None:
        errors.add(413)
    for status in sorted(errors):
        responses[str(status)] = {"description": _ERRORS.get(status, "refused"), "content": problem}
    out: dict[str, Any] = {
        "operationId": _operation_id(op),
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": _parameters(op, defs),
        "responses": responses,
        "security": _security(op),
    }
    if op.description:
        out["description"] = op.description
    if op.body is not None:
        schema = _schema_of(op.body, refs)
        out["requestBody"] = {"required": False, "content": {"application/json": {"schema": schema}}}
    elif op.body_schema is not None:
        out["requestBody"] = {"required": False, "content": dict(op.body_schema)}
    return out


def _operation_id(op: Operation) -> str:
    words = re.sub(r"[{}]", "", op.path.removeprefix("/api/v1/")).replace("-", "_").split("/")
    return op.method.lower() + "_" + "_".join(w for w in words if w)


def document(operations: Iterable[Operation], version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `operations`."""
    ops = list(operations)
    refs, defs = _model_refs(ops)
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs, defs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gitsync",
            "version": version,
            "description": "Flows from git, their runs, logs and syncs. Git is the only way to change a flow: "
            "this API shows, runs, pauses and syncs; it never edits one. Errors are RFC 9457 problem details.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {name: schema for name, schema in defs.items() if not name.endswith("Query")},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
