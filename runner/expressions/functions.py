"""The functions of expressions (`secret()`, `kv()`, `read()`, `render()`, `now()`, `uuid()`, …) and the
`RenderRuntime` through which the execution-bound ones reach one task's KV store, files and engine functions.

`ExpressionFunctions.table()` is what `Renderer` installs as its Jinja globals (each wrapped strictly there).
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import functools
import inspect
import os
import random
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

from runner.api import MISSING, KeyValue, Storage, TaskFailed
from runner.errors import ExpressionError
from runner.expressions import dates
from runner.expressions import filters as rf
from runner.expressions.pebble import is_template
from runner.masking import Masker

RUNTIME = "__runtime__"
"""The variables key holding the `RenderRuntime` of the task being rendered."""
MAX_RENDER_DEPTH = 10
RUNTIME_FUNCTIONS = ("errorLogs", "tasksWithState", "fileURI")
"""Functions the engine gives each render (`RenderRuntime.functions`); elsewhere they are "not available here"."""

_depth: contextvars.ContextVar[int] = contextvars.ContextVar("render_depth", default=0)
Render = Callable[[str, Mapping[str, Any]], str]


class FunctionError(ExpressionError):
    """A function was called wrongly or its resource is missing."""


@dataclass
class RenderRuntime:
    """What the functions of one task's rendering reach: the KV store, the execution's files, namespace files."""

    kv: KeyValue | None = None
    storage: Storage | None = None
    namespace_files: Callable[[str, str], str] | None = None
    """(namespace, path) -> text of a namespace file, for `read('script.sh', namespace='shared')`."""
    functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    """Execution-bound functions the engine provides: errorLogs, tasksWithState, fileURI, fileSize, …"""


class ExpressionFunctions:
    """The functions expressions call; secrets they read are added to the masker."""

    def __init__(
        self,
        secrets: Mapping[str, str],
        environ: Mapping[str, str] | None,
        masker: Masker,
        max_output: int,
        render: Render,
    ) -> None:
        self._secrets = secrets
        self._environ = environ
        self.masker = masker
        self.max_output = max_output
        self._render = render

    def table(self) -> dict[str, Callable[..., Any]]:
        """Name -> function, as expressions call them (`secret`, `kv`, `read`, `render`, `now`, …)."""
        functions: dict[str, Callable[..., Any]] = {
            "secret": self._secret,
            "kv": _with_context(self._kv),
            "read": _with_context(self._read),
            "render": _with_context(self._render_function),
            "renderOnce": _with_context(lambda ctx, toRender: self._render_function(ctx, toRender, recursive=False)),
            "now": _now,
            "fromJson": lambda json: rf.from_json(json),
            "json": lambda json: rf.from_json(json),
            "yaml": lambda yaml: rf.from_yaml(yaml),
            "fromYaml": lambda yaml: rf.from_yaml(yaml),
            "uuid": lambda: str(uuid.uuid4()),
            "id": _short_id,
            "randomInt": lambda lower, upper: random.randrange(int(lower), int(upper)),
            "random": random.random,
            "range": rf.range_list,
            "max": lambda *values: max(values[0] if len(values) == 1 else values),
            "min": lambda *values: min(values[0] if len(values) == 1 else values),
            "currentEachOutput": _with_context(_current_each_output),
        }
        functions.update(
            fileSize=_with_context(lambda ctx, path, namespace=None: self._file(ctx, "fileSize", path).stat().st_size),
            fileExists=_with_context(self._file_exists),
            isFileEmpty=_with_context(self._file_empty),
            fileEmpty=_with_context(self._file_empty),
        )
        for name in RUNTIME_FUNCTIONS:
            functions[name] = _with_context(functools.partial(self._runtime_function, name))
        return functions

    def _secret(self, key: Any) -> str:
        key = str(key)
        value = self._secrets[key] if key in self._secrets else self._secret_from_environ(key)
        self.masker.add(value)
        return value

    def _secret_from_environ(self, key: str) -> str:
        environ = os.environ if self._environ is None else self._environ
        for candidate in (f"SECRET_{key}", f"SECRET_{key.upper()}"):
            if candidate in environ:
                raw = environ[candidate]
                try:
                    return base64.b64decode("".join(raw.split()), validate=True).decode("utf-8")
                except (binascii.Error, ValueError):
                    raise FunctionError(
                        f"secret {key!r}: environment variable {candidate} is not valid base64"
                    ) from None
        raise FunctionError(
            f"secret {key!r} is not defined (set environment variable SECRET_{key.upper()} to its base64 value, "
            "or add it to the secrets file)"
        )

    def _kv(self, context: Context, key: Any, namespace: Any = None, errorOnMissing: Any = True) -> Any:
        store = _runtime(context).kv
        if store is None:
            raise FunctionError("kv() is not available here (no key-value store)")
        ns = str(namespace) if namespace else _flow_namespace(context)
        if not ns:
            raise FunctionError("kv() needs a namespace")
        value = store.get(ns, str(key))
        if value is MISSING:
            if errorOnMissing:
                raise FunctionError(f"kv key {str(key)!r} not found in namespace {ns!r}")
            return None
        return value

    def _read(self, context: Context, path: Any, namespace: Any = None) -> str:
        runtime = _runtime(context)
        location = str(path)
        if location.startswith("kestra://"):
            if runtime.storage is None:
                raise FunctionError("read() of an execution file is not available here")
            file = runtime.storage.path(location)
            if file.stat().st_size > self.max_output:
                raise FunctionError(f"{location} is larger than {self.max_output} bytes")
            return file.read_text(encoding="utf-8")
        if runtime.namespace_files is None:
            raise FunctionError(f"read({location!r}): namespace files are not available here")
        ns = str(namespace) if namespace else _flow_namespace(context)
        return runtime.namespace_files(ns or "", location)

    def _file(self, context: Context, what: str, path: Any) -> Path:
        """The local file of an execution file URI (`kestra:///…`), for fileSize, fileExists, isFileEmpty."""
        location = str(path)
        if not location.startswith("kestra://"):
            raise FunctionError(
                f"{what}({location!r}): only execution files (kestra:///… URIs, e.g. outputs.task.uri) can be "
                "read here; namespace files are not available"
            )
        storage = _runtime(context).storage
        if storage is None:
            raise FunctionError(f"{what}() of an execution file is not available here")
        return storage.path(location)

    def _file_exists(self, context: Context, path: Any, namespace: Any = None) -> bool:
        try:
            return self._file(context, "fileExists", path).is_file()
        except TaskFailed:  # absent, or another namespace's file: neither exists for this execution
            return False

    def _file_empty(self, context: Context, path: Any, namespace: Any = None) -> bool:
        return self._file(context, "isFileEmpty", path).stat().st_size == 0

    def _render_function(self, context: Context, toRender: Any, recursive: bool = True) -> Any:
        value = toRender
        if not isinstance(value, str):
            return value
        depth = _depth.get()
        if depth >= MAX_RENDER_DEPTH:
            raise FunctionError(f"render() nested more than {MAX_RENDER_DEPTH} deep")
        token = _depth.set(depth + 1)
        try:
            variables = context.get_all()
            result = self._render(value, variables)
            for _ in range(MAX_RENDER_DEPTH if recursive else 0):
                if result == value or not is_template(result):
                    break
                value, result = result, self._render(result, variables)
            return result
        finally:
            _depth.reset(token)

    def _runtime_function(self, name: str, context: Context, *args: Any, **kwargs: Any) -> Any:
        function = _runtime(context).functions.get(name)
        if function is None:
            raise FunctionError(f"{name}() is not available here")
        check_arguments("function", name, signature_of(function), args, kwargs)
        return function(*args, **kwargs)


def signature_of(function: Callable[..., Any]) -> inspect.Signature | None:
    """The parameters a filter or function takes (None for a builtin without a signature)."""
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return None


def check_arguments(
    kind: str,
    name: str,
    signature: inspect.Signature | None,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    skip: int = 0,
) -> None:
    """Refuse a call whose arguments a function of `signature` does not take, naming the arguments it takes
    (Kestra's names); `skip` leading parameters are not the author's (the filtered value, the template context)."""
    if signature is None:  # a builtin: let the call say
        return
    try:
        signature.bind(*([None] * skip), *args, **kwargs)
    except TypeError as exc:
        shown = [
            ("*" if p.kind is p.VAR_POSITIONAL else "") + p.name
            for p in list(signature.parameters.values())[skip:]
            if p.kind is not p.VAR_KEYWORD
        ]
        takes = f"its arguments: {', '.join(shown)}" if shown else "it takes no argument"
        raise FunctionError(f"{kind} {name}() {_argument_problem(str(exc))} ({takes})") from None


def _argument_problem(reason: str) -> str:
    """Python's words for a wrong call, in a flow author's."""
    for pattern, words in (
        (r"got an unexpected keyword argument '(\w+)'", "has no argument '{}'"),
        (r"missing a required argument: '(\w+)'", "needs the argument '{}'"),
        (r"multiple values for argument '(\w+)'", "is given the argument '{}' twice"),
        (r"too many positional arguments", "is given too many arguments"),
    ):
        match = re.search(pattern, reason)
        if match:
            return words.format(*match.groups())
    return reason


def _now(format: Any = None, timeZone: Any = None, existingFormat: Any = None, locale: Any = None) -> str:
    """Kestra's `now(format, timeZone, existingFormat, locale)`: the current time, formatted as the `date` filter
    formats it (`iso`, in UTC unless `timeZone`)."""
    return dates.format_date(dates.now(timeZone), format, timeZone)


def _short_id() -> str:
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    number, out = uuid.uuid4().int, ""
    while number:
        number, digit = divmod(number, 62)
        out += alphabet[digit]
    return out


def _current_each_output(context: Context, outputs: Any) -> Any:
    """The part of a ForEach task's outputs (keyed by loop values) that belongs to the current iteration."""
    value = outputs
    parents = context.get("parents") or []
    keys = [p.get("taskrun", {}).get("value") for p in reversed(parents) if isinstance(p, Mapping)]
    taskrun = context.get("taskrun")
    if isinstance(taskrun, Mapping):
        keys.append(taskrun.get("value"))
    for key in keys:
        if isinstance(value, Mapping) and key is not None and str(key) in value:
            value = value[str(key)]
    return value


def _with_context(function: Callable[..., Any]) -> Callable[..., Any]:
    """A function that Jinja calls with the template context first."""

    @functools.wraps(function)  # its signature is the function's (for check_arguments)
    def run(context: Context, *args: Any, **kwargs: Any) -> Any:
        return function(context, *args, **kwargs)

    return pass_context(run)


def _runtime(context: Context) -> RenderRuntime:
    runtime = context.get(RUNTIME)
    return runtime if isinstance(runtime, RenderRuntime) else RenderRuntime()


def _flow_namespace(context: Context) -> str | None:
    flow = context.get("flow")
    return flow.get("namespace") if isinstance(flow, Mapping) else None
