"""Kestra `{{ }}` expressions, rendered on Jinja2's sandboxed environment.

    renderer = Renderer(secrets=load_secrets(path), masker=masker)   # one per process
    renderer.render("{{ inputs.name | upper }}", variables)           # -> str
    renderer.render_value({"a": ["{{ inputs.n }}"]}, variables)        # deep, -> same shape
    renderer.evaluate("{{ inputs.n }}", variables)                     # -> 3 (typed, for If/ForEach/runIf)

A template is translated from Pebble to Jinja once (`runner.render_parse`) and the compiled Jinja template is kept
in an LRU cache keyed by the template text; a string without `{{`/`{%` is returned as it is. Rendering is not
recursive: a value containing `{{ }}` prints literally unless passed to `render()`. An undefined variable fails
with a `RenderError` naming it, except under `??`, `???`, `is defined`, `is null`, `is empty` and `default`.

The variables are the engine's context (inputs, outputs, vars, flow, execution, task, taskrun, parent, parents,
labels, trigger, envs, globals, workingDir, outputDir…) plus, under the key `RUNTIME`, a `RenderRuntime` giving
`kv()`, `read()` and the execution-bound functions (errorLogs, tasksWithState, fileURI…) what they need.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError, Undefined
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context

from runner.errors import GitSyncError
from runner.expressions import filters as rf
from runner.expressions import limits
from runner.expressions.direct import Direct, NotDirect, Run
from runner.expressions.functions import RUNTIME, ExpressionFunctions, FunctionError, RenderRuntime
from runner.expressions.pebble import (
    BLOCK_END,
    BLOCK_START,
    COMMENT_END,
    COMMENT_START,
    VAR_END,
    VAR_START,
    Catalog,
    Chain,
    PebbleSyntaxError,
    Translation,
    is_template,
    translate,
)
from runner.expressions.sandbox import (
    PebbleUndefined,
    PebbleUndefinedError,
    Sandbox,
    display,
    finalize,
    loop_items,
    loop_pairs,
    strict,
)
from runner.expressions.variables import ENV_PREFIX, env_variables, load_secrets
from runner.masking import Masker

MAX_OUTPUT = limits.MAX_OUTPUT
MAX_LOOP_ITEMS = limits.MAX_LOOP_ITEMS


class RenderError(GitSyncError):
    """An expression could not be rendered; the message names the expression and why (secrets masked)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"RenderError({self.message!r})"


# ---------------------------------------------------------------------------------------------- renderer


@dataclass
class _Compiled:
    """A template text, translated once. A template without tags is evaluated directly (`runner.expressions.direct`):
    its closures are built on first use. Otherwise its Jinja template and (one `{{ expr }}`) its typed expression are
    each compiled on first use: `render` needs one, `evaluate` the other, and a compile is most of a new text's cost.
    """

    translation: Translation
    template: Any = None
    expression: Any = None
    pieces: tuple[str | Run, ...] | None = None
    value: Run | None = None
    jinja: bool = False
    """Evaluated by Jinja only: it has tags, or something only Jinja's compiler judges."""


class Renderer:
    """Renders Kestra expressions; one per process (it holds the compiled-template cache)."""

    def __init__(
        self,
        secrets: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        masker: Masker | None = None,
        cache_size: int = 4096,
        max_output: int = MAX_OUTPUT,
        direct: bool | None = None,
    ) -> None:
        """`direct`: evaluate templates without tags directly (the default, unless `GITSYNC_EXPRESSIONS=jinja`)."""
        self._secrets = dict(secrets or {})
        self._environ = environ
        self.masker = masker if masker is not None else Masker()
        self.max_output = max_output
        self._functions = ExpressionFunctions(self._secrets, environ, self.masker, max_output, self.render)
        self._env = self._environment()
        self._globals = dict(self._env.globals)
        if direct is None:
            direct = os.environ.get("GITSYNC_EXPRESSIONS", "").strip().lower() != "jinja"
        self._direct = Direct(self._env, self._globals) if direct else None
        self._catalog = Catalog(
            functions=frozenset(k for k in self._env.globals if not k.startswith("_")),
            filters=frozenset(self._env.filters),
            tests=frozenset(self._env.tests),
        )
        self._compile_cached = functools.lru_cache(maxsize=cache_size)(self._compile)

    def __repr__(self) -> str:
        return f"Renderer({len(self._secrets)} secrets, cache={self.cache_info()})"

    # -- public API

    def render(self, text: str, variables: Mapping[str, Any]) -> str:
        """`text` with every `{{ }}` / `{% %}` rendered (a string without them is returned as it is)."""
        if not isinstance(text, str):
            raise TypeError(f"render() takes a string, not {type(text).__name__}")
        if not is_template(text):
            return text
        compiled = self._get(text)
        try:
            return self._run(compiled, text, variables)
        except RenderError:
            raise
        except Exception as exc:
            raise self._error(exc, text, compiled.translation) from None

    def render_value(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """`value` with every string rendered, deep through dicts and lists (keys are not rendered)."""
        if isinstance(value, str):
            return self.render(value, variables)
        if isinstance(value, Mapping):
            return {k: self.render_value(v, variables) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.render_value(v, variables) for v in value]
        return value

    def evaluate(self, expression: Any, variables: Mapping[str, Any]) -> Any:
        """The typed value of a template that is exactly one `{{ expr }}`; other strings render to text."""
        if not isinstance(expression, str):
            return expression
        text = expression.strip()
        if not is_template(text):
            return expression
        compiled = self._get(text)
        if compiled.translation.single is None:
            return self.render(expression, variables)
        try:
            with limits.budget():
                value = self._value(compiled, text, variables)
                if isinstance(value, Undefined):
                    value._fail_with_undefined_error()
                return value
        except RenderError:
            raise
        except Exception as exc:
            raise self._error(exc, text, compiled.translation) from None

    def cache_info(self) -> Any:
        """The compiled-template cache's hits, misses and size (functools.lru_cache's CacheInfo)."""
        return self._compile_cached.cache_info()

    def add_secret(self, value: str) -> None:
        self.masker.add(value)

    # -- compiling

    def _get(self, text: str) -> _Compiled:
        try:
            return self._compile_cached(text)
        except PebbleSyntaxError as exc:
            raise RenderError(self.masker.mask(f"invalid expression: {exc}")) from None
        except TemplateError as exc:
            raise RenderError(self.masker.mask(f"invalid expression: {exc} in {_abbreviate(text)}")) from None

    def _compile(self, text: str) -> _Compiled:
        translation = translate(text, self._catalog)
        return _Compiled(translation, jinja=self._direct is None or translation.pieces is None)

    def _direct_pieces(self, compiled: _Compiled) -> tuple[str | Run, ...] | None:
        """The template's direct closures (built once), or None when Jinja evaluates it."""
        if compiled.pieces is None and not compiled.jinja:
            try:  # two threads may both build them: the same closures, harmlessly
                assert self._direct is not None and compiled.translation.pieces is not None
                compiled.pieces = self._direct.pieces(compiled.translation.pieces)
            except NotDirect:
                compiled.jinja = True
        return None if compiled.jinja else compiled.pieces

    def _value(self, compiled: _Compiled, text: str, variables: Mapping[str, Any]) -> Any:
        """The typed value of a one-`{{ expr }}` template, directly or through Jinja's compiled expression."""
        if self._direct is not None and self._direct_pieces(compiled) is not None:
            if compiled.value is None:
                assert compiled.translation.pieces is not None
                compiled.value = self._direct.expression(compiled.translation.pieces[0][1])
            return compiled.value(self._direct.scope(variables))
        return self._expression(compiled, text)(**variables)

    def _template(self, compiled: _Compiled, text: str) -> Any:
        if compiled.template is None:  # two threads may both compile it: the same template, harmlessly
            with self._jinja_errors(text):
                compiled.template = self._env.from_string(compiled.translation.jinja)
        return compiled.template

    def _expression(self, compiled: _Compiled, text: str) -> Any:
        if compiled.expression is None:
            with self._jinja_errors(text):
                single = compiled.translation.single or ""
                compiled.expression = self._env.compile_expression(single, undefined_to_none=False)
        return compiled.expression

    @contextlib.contextmanager
    def _jinja_errors(self, text: str) -> Iterator[None]:
        try:
            yield
        except TemplateError as exc:
            raise RenderError(self.masker.mask(f"invalid expression: {exc} in {_abbreviate(text)}")) from None

    def _run(self, compiled: _Compiled, text: str, variables: Mapping[str, Any]) -> str:
        pieces = self._direct_pieces(compiled)
        if pieces is not None and self._direct is not None:
            scope = self._direct.scope(variables)
            return self._collect(piece if isinstance(piece, str) else piece(scope) for piece in pieces)
        template = self._template(compiled, text)
        parent = self._globals.copy()
        parent.update(variables)
        context = Context(self._env, parent, template.name, template.blocks, globals=self._globals)
        return self._collect(template.root_render_func(context))

    def _collect(self, rendered: Iterable[str]) -> str:
        """The rendered chunks joined, within the render budget and the output limit."""
        with limits.budget() as budget:
            chunks: list[str] = []
            size = 0
            for chunk in rendered:
                size += len(chunk)
                if size > self.max_output:
                    raise SecurityError(f"the rendered text is larger than {self.max_output} characters")
                chunks.append(chunk)
                budget.check_time()
            return "".join(chunks)

    # -- errors

    def _error(self, exc: BaseException, text: str, translation: Translation) -> RenderError:
        snippet = _abbreviate(text)
        if isinstance(exc, PebbleUndefinedError):
            name, where = _undefined_name(exc, translation)
            reason = f"undefined variable {name!r}"
            snippet = where or snippet
        elif isinstance(exc, limits.LimitError):
            reason = str(exc)
        elif isinstance(exc, SecurityError):
            reason = f"forbidden: {exc}"
        elif isinstance(exc, RecursionError):
            reason = "expression nesting is too deep"
        else:
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, TypeError | AttributeError | KeyError | IndexError | ZeroDivisionError):
                reason = f"{type(exc).__name__}: {reason}"
        return RenderError(self.masker.mask(f"{reason} in {snippet}"))

    # -- environment

    def _environment(self) -> Sandbox:
        env = Sandbox(
            undefined=PebbleUndefined,
            finalize=finalize,
            autoescape=False,
            keep_trailing_newline=True,
            variable_start_string=VAR_START,
            variable_end_string=VAR_END,
            block_start_string=BLOCK_START,
            block_end_string=BLOCK_END,
            comment_start_string=COMMENT_START,
            comment_end_string=COMMENT_END,
            cache_size=0,
            # No constant folding: Jinja's optimizer would evaluate constant parts (filters included) while
            # compiling, outside the render's budget and before the parts written ahead of them.
            optimized=False,
        )
        env.globals.clear()
        env.globals.update({name: strict(f, "function", name) for name, f in self._functions.table().items()})
        env.globals.update(
            _pb_bool=rf.op_bool,
            _pb_div=strict(rf.op_div),
            _pb_concat=strict(rf.op_concat),
            _pb_contains=strict(rf.op_contains),
            _pb_range=strict(rf.op_range),
            _pb_present=rf.is_present,
            _pb_defined=rf.is_defined,
            _pb_nc=rf.null_coalesce,
            _pb_uc=rf.undefined_coalesce,
            _pb_iter=strict(loop_items),
            _pb_items=strict(loop_pairs),
        )
        env.filters = {name: strict(f, "filter", name, name == "default") for name, f in rf.FILTERS.items()}
        env.tests = {name: strict(t, "test", name, name in rf.UNDEFINED_SAFE_TESTS) for name, t in rf.TESTS.items()}
        return env


def _undefined_name(exc: PebbleUndefinedError, translation: Translation) -> tuple[str, str | None]:
    """The full name of what was undefined (`inputs.nope`) and the `{{ }}` it is in, from the source chains."""
    path = exc.path
    for chain in translation.chains:
        if exc.top_level:
            if chain.root == path[0] and _matches(chain.keys, path[1:], 0):
                return chain.root + "".join(chain.displays[: len(path) - 1]), chain.where
            continue
        for start in range(len(chain.keys)):
            if _matches(chain.keys, path, start):
                return chain.root + "".join(chain.displays[: start + len(path)]), chain.where
    if exc.top_level:
        for chain in translation.chains:
            if chain.root == path[0]:
                return display(path), chain.where
    return display(path), None


def _matches(keys: tuple[Any, ...], path: tuple[Any, ...], start: int) -> bool:
    if start + len(path) > len(keys):
        return False
    return all(_same_key(k, p) for k, p in zip(keys[start:], path, strict=False))


def _same_key(key: Any, used: Any) -> bool:
    """Whether a key of the source is the one used (a key that was itself undefined, or compares badly, is not)."""
    if key is Chain.DYNAMIC:
        return True
    if isinstance(used, Undefined):
        return False
    try:
        return bool(key == used)
    except Exception:
        return False


def _abbreviate(text: str, limit: int = 200) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = [
    "ENV_PREFIX",
    "RUNTIME",
    "FunctionError",
    "PebbleUndefined",
    "PebbleUndefinedError",
    "RenderError",
    "RenderRuntime",
    "Renderer",
    "env_variables",
    "load_secrets",
]
