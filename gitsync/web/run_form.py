"""The Run form: one field per input of the flow (its type, default, whether it is required, a SELECT's values, a
FILE upload), checked on the server by `runner.inputs` as an API run is, and shown again with each problem
beside its field.

A run changes something, so the form takes the API token (the page's script fills it from the tab's token); a
browser's cookie alone never starts a run. The execution is created by the same `RunManager.create` as the API's.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

from gitsync.http.guard import BodyError
from gitsync.views.models import Flow, InputSpec
from gitsync.web.render import View
from runner.inputs import InputError, UploadedFile, resolve_inputs

TOKEN_FIELD = "_token"
"""The form's token field: an input id cannot start with `_`, so no input is named so."""
MAX_FORM = 100 * 1024 * 1024
MAX_PARTS = 100
PROBLEM = re.compile(r"^input '([^']+)'")
CONTROLS = {
    "STRING": "text", "SECRET": "password", "INT": "number", "FLOAT": "number", "BOOLEAN": "boolean",
    "BOOL": "boolean", "SELECT": "select", "ENUM": "select", "MULTISELECT": "multiselect", "DATE": "date",
    "DATETIME": "datetime-local", "TIME": "time", "DURATION": "text", "FILE": "file", "JSON": "textarea",
    "YAML": "textarea", "ARRAY": "textarea", "URI": "url", "EMAIL": "email",
}  # fmt: skip
HINTS = {
    "INT": "a whole number",
    "FLOAT": "a number",
    "DATE": "a date (YYYY-MM-DD)",
    "DATETIME": "a date and time, in UTC",
    "TIME": "a time (HH:MM:SS)",
    "DURATION": "an ISO-8601 duration, e.g. PT5M or P1D",
    "JSON": "JSON",
    "YAML": "YAML",
    "ARRAY": 'a JSON list, e.g. ["a", "b"]',
    "URI": "a URI with its scheme, e.g. https://…",
    "EMAIL": "an e-mail address",
    "SECRET": "never stored in clear; masked in every log",
}


@dataclass(frozen=True)
class Field:
    spec: InputSpec
    control: str
    value: Any
    """What the field shows: a string, or the chosen values of a multiple choice."""
    error: str | None
    hint: str
    default_text: str | None
    """The default as the flow's YAML writes it (an expression is rendered when the execution is created)."""

    @property
    def dom_id(self) -> str:
        return f"input-{self.spec.id}"


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _shown(spec: InputSpec, value: Any) -> Any:
    """A default (or a value given before) in the form its field takes."""
    if value is None or _is_template(value):
        return [] if spec.type == "MULTISELECT" else ""
    if spec.type == "MULTISELECT":
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if spec.type in ("BOOLEAN", "BOOL"):
        return str(value).lower() if isinstance(value, bool | str) else ""
    if spec.type in ("JSON", "ARRAY") and not isinstance(value, str):
        return json.dumps(value, indent=2, ensure_ascii=False)
    if spec.type == "YAML" and not isinstance(value, str):
        return yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
    if spec.type == "DATETIME":
        text = str(value)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
        moment = moment.astimezone(UTC) if moment.tzinfo else moment
        return moment.replace(tzinfo=None).isoformat(timespec="seconds")
    return str(value)


def _written(value: Any) -> str:
    """A default as YAML writes it (`true`, `[1, 2]`), not as Python prints it."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def beside(problem: str) -> str:
    """A problem as shown beside its field (whose label names the input): without the input's name."""
    text = re.sub(r"^input '[^']+'(?: \([A-Z]+\))?:? ", "", problem)
    return "This input " + text + "." if text.startswith("is ") else text[:1].upper() + text[1:]


def fields(specs: Sequence[InputSpec], given: Mapping[str, Any] | None, errors: Mapping[str, str]) -> list[Field]:
    out = []
    for spec in specs:
        control = CONTROLS.get(spec.type, "text")
        if control in ("select", "multiselect") and not spec.values:
            control = "textarea" if control == "multiselect" else "text"  # choices from an expression: typed in
        if given is not None and spec.id in given and spec.type not in ("SECRET", "FILE"):
            value = _shown(spec, given[spec.id])
        elif given is not None:
            value = [] if spec.type == "MULTISELECT" else ""
        else:
            value = _shown(spec, spec.defaults)
        default_text = None if spec.defaults is None else _written(spec.defaults)
        hint = HINTS.get(spec.type, "")
        if control == "textarea" and spec.type == "MULTISELECT":
            hint = 'a JSON list of the values, e.g. ["a", "b"]'
        error = errors.get(spec.id)
        out.append(Field(spec, control, value, beside(error) if error else None, hint, default_text))
    return out


def form_view(flow: Flow, given: Mapping[str, Any] | None = None, errors: Mapping[str, str] | None = None,
              general: Sequence[str] = (), token_error: str | None = None, status: int = 200) -> View:  # fmt: skip
    errors = errors or {}
    return View(
        "run.html",
        {
            "nav": "",
            "flow": flow,
            "fields": fields(flow.inputs, given, errors),
            "general": list(general),
            "problems": [(spec.id, errors[spec.id]) for spec in flow.inputs if spec.id in errors],
            "token_error": token_error,
            "multipart": any(spec.type == "FILE" for spec in flow.inputs),
            "token_field": TOKEN_FIELD,
        },
        status,
    )


# -- the submitted form -------------------------------------------------------------------------------------------


async def read_form(request: Request, timeout: float) -> list[tuple[str, str | UploadedFile]]:
    """The form's fields in order (a multiple choice is several), files read; refused (BodyError) beyond
    `MAX_FORM` bytes or `MAX_PARTS` parts, or when the body does not arrive within `timeout` seconds."""
    length = request.headers.get("content-length", "")
    if length.strip().isdigit() and int(length) > MAX_FORM:
        raise BodyError(413, f"request body over {MAX_FORM} bytes")
    size = 0

    async def receive() -> Message:
        nonlocal size
        message = await request.receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > MAX_FORM:
                raise BodyError(413, f"request body over {MAX_FORM} bytes")
        return message

    items: list[tuple[str, str | UploadedFile]] = []
    try:
        async with asyncio.timeout(timeout):
            async with Request(request.scope, receive).form(max_files=MAX_PARTS, max_fields=MAX_PARTS) as form:
                for name, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        data = await value.read()
                        if value.filename or data:
                            items.append((name, UploadedFile(filename=value.filename or name, data=data)))
                    else:
                        items.append((name, value))
    except TimeoutError:
        raise BodyError(408, f"the form did not arrive within {timeout:g} s") from None
    except ClientDisconnect:
        raise BodyError(400, "the browser went away before the form was sent") from None
    except (HTTPException, MultiPartException) as exc:
        detail = exc.detail if isinstance(exc, HTTPException) else exc.message
        raise BodyError(400, f"the form cannot be read: {detail}") from None
    return items


def given_inputs(specs: Sequence[InputSpec], items: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """The inputs the form gives: a field left empty is not given (its default applies, or it is required); the
    chosen values of a multiple choice are a list; fields that are no input of the flow are left out."""
    by_name: dict[str, list[Any]] = {}
    for name, value in items:
        by_name.setdefault(name, []).append(value)
    given: dict[str, Any] = {}
    for spec in specs:
        values = [v for v in by_name.get(spec.id, []) if not (isinstance(v, str) and v == "")]
        if not values:
            continue
        if spec.type == "MULTISELECT" and spec.values:
            given[spec.id] = [v for v in values if isinstance(v, str)]
        else:
            given[spec.id] = values[-1]
    return given


def check(declared: Sequence[Any] | None, given: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The problems `runner.inputs` finds in the given inputs, by input id (and those of no one input). An input
    left empty whose default is an expression is not judged here: the default is rendered when the execution is
    created, and a problem then is shown above the form."""
    items = []
    for item in declared or []:
        if item.id not in given and _is_template(item.defaults):
            item = item.model_copy(update={"defaults": None, "required": False})
        items.append(item)
    probe = {k: ("kestra:///upload" if isinstance(v, UploadedFile) else v) for k, v in given.items()}
    secrets = [str(given[i.id]) for i in items if str(i.type).upper() == "SECRET" and isinstance(given.get(i.id), str)]
    try:
        resolve_inputs(items, probe)
    except InputError as exc:
        by_field: dict[str, str] = {}
        general: list[str] = []
        for problem in exc.problems:
            for secret in secrets:
                problem = problem.replace(secret, "******")
            match = PROBLEM.match(problem)
            if match and any(i.id == match.group(1) for i in items):
                name = match.group(1)
                by_field[name] = f"{by_field[name]}; {problem}" if name in by_field else problem
            else:
                general.append(problem)
        return by_field, general
    return {}, []
