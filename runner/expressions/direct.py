"""Templates without `{% %}` tags evaluated straight from their parsed Pebble tree, with no Jinja compile.

Compiling a template with Jinja (code generation, then Python's `compile()`) costs about half a millisecond, and
a real flow has a different expression in almost every task: most of a task's cost was compiling its template.
Most templates are text and `{{ expr }}` only. `build` turns the tree the Pebble parser made for such a template
into closures that make the calls the code Jinja generates for it makes, in the same order, on the same sandbox:
names resolved from the variables, then the globals, else undefined; `getitem`/`getattr` for `.key` and `[key]`;
`call` for functions; `call_binop` for `+`, `*` and `%`; the sandbox's filters and tests (with the context,
eval context or environment they ask for); `finalize` for each printed value. So the values and the errors are
the same. tests/test_expression_paths.py renders every template of the expression suites and of the Kestra
corpus both ways and compares; `GITSYNC_EXPRESSIONS=jinja` sends every template through Jinja instead.
"""

from __future__ import annotations

import keyword
import operator
from collections.abc import Callable, Mapping
from typing import Any, cast

from jinja2.runtime import Context
from jinja2.utils import _PassArg, missing

from runner.expressions.pebble import LOOP_ATTRIBUTES, Piece, pure
from runner.expressions.sandbox import Sandbox

Run = Callable[["Scope"], Any]

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "equals": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
    "-": operator.sub,
}
_HELPERS = {"/": "_pb_div", "~": "_pb_concat", "contains": "_pb_contains", "..": "_pb_range"}
_UNARY: dict[str, Callable[[Any], Any]] = {"not": operator.not_, "-": operator.neg, "+": operator.pos}


class NotDirect(Exception):
    """The tree holds something only Jinja's compiler judges (a keyword argument Python refuses): compile it."""


class Scope:
    """One evaluation: the variables, and the Jinja context made only if a function or filter asks for one."""

    __slots__ = ("_context", "_env", "_globals", "variables")

    def __init__(self, env: Sandbox, globals_: dict[str, Any], variables: Mapping[str, Any]) -> None:
        self._env = env
        self._globals = globals_
        self.variables = variables
        self._context: Context | None = None

    def resolve(self, name: str) -> Any:
        if name in self.variables:
            return self.variables[name]
        value = self._globals.get(name, missing)
        return self._env.undefined(name=name) if value is missing else value

    @property
    def context(self) -> Context:
        if self._context is None:
            parent = self._globals.copy()
            parent.update(self.variables)
            self._context = Context(self._env, parent, None, {}, globals=self._globals)
        return self._context


class Direct:
    """Builds the closures of tag-free templates over one sandbox (one per renderer)."""

    def __init__(self, env: Sandbox, globals_: dict[str, Any]) -> None:
        self.env = env
        self.globals = globals_
        """The renderer's one copy of the environment's globals (what its Jinja contexts are given too)."""

    def pieces(self, pieces: tuple[Piece, ...]) -> tuple[str | Run, ...]:
        """Each piece as its normalised text, or a closure giving the printed text of its `{{ }}`."""
        finalize = cast(Callable[[Any], str], self.env.finalize)
        out: list[str | Run] = []
        for kind, content in pieces:
            if kind == "text":
                out.append(_newlines(content))
            else:
                out.append(_printed(self.expression(content), finalize))
        return tuple(out)

    def expression(self, node: tuple) -> Run:
        """The closure of one parsed expression (raises NotDirect)."""
        return cast(Run, getattr(self, "_" + node[0])(node))

    def scope(self, variables: Mapping[str, Any]) -> Scope:
        return Scope(self.env, self.globals, variables)

    # -- nodes

    def _lit(self, node: tuple) -> Run:
        value = node[1]
        return lambda scope: value

    def _name(self, node: tuple) -> Run:
        name = node[1]
        return lambda scope: scope.resolve(name)

    def _attr(self, node: tuple) -> Run:
        base, name = self.expression(node[1]), node[2]
        if node[1] == ("name", "loop") and name in LOOP_ATTRIBUTES:
            getattr_, attribute = self.env.getattr, LOOP_ATTRIBUTES[name]
            return lambda scope: getattr_(base(scope), attribute)
        getitem = self.env.getitem
        return lambda scope: getitem(base(scope), name)

    def _item(self, node: tuple) -> Run:
        base, key, getitem = self.expression(node[1]), self.expression(node[2]), self.env.getitem
        return lambda scope: getitem(base(scope), key(scope))

    def _call(self, node: tuple) -> Run:
        name, call = node[1], self.env.call
        args, kwargs = self._arguments(node[2], node[3])
        return lambda scope: call(
            scope.context, scope.resolve(name), *[a(scope) for a in args], **{k: v(scope) for k, v in kwargs}
        )

    def _filter(self, node: tuple) -> Run:
        _, value, name, args, kwargs = node
        return self._invoke(self.env.filters[name], self.expression(value), args, kwargs)

    def _test(self, node: tuple) -> Run:
        _, value, name, args, kwargs, negated = node
        run = self._invoke(cast(Callable[..., Any], self.env.tests[name]), self.expression(value), args, kwargs)
        return (lambda scope: not run(scope)) if negated else run

    def _invoke(self, function: Callable[..., Any], value: Run, args: list, kwargs: list) -> Run:
        """A filter or test called as Jinja's generated code calls it: what it asks for, the value, the arguments."""
        positional, named = self._arguments(args, kwargs)
        pass_arg = _PassArg.from_obj(function)
        first: Callable[[Scope], Any] | None = None
        if pass_arg is _PassArg.context:
            first = lambda scope: scope.context  # noqa: E731
        elif pass_arg is _PassArg.eval_context:
            first = lambda scope: scope.context.eval_ctx  # noqa: E731
        elif pass_arg is _PassArg.environment:
            env = self.env
            first = lambda scope: env  # noqa: E731
        if first is None and not positional and not named:
            return lambda scope: function(value(scope))

        def run(scope: Scope) -> Any:
            head = () if first is None else (first(scope),)
            return function(*head, value(scope), *[a(scope) for a in positional], **{k: v(scope) for k, v in named})

        return run

    def _arguments(self, args: list, kwargs: list) -> tuple[list[Run], list[tuple[str, Run]]]:
        names = [name for name, _ in kwargs]
        if len(set(names)) != len(names) or any(keyword.iskeyword(name) for name in names):
            raise NotDirect("a keyword argument Python refuses")
        return [self.expression(a) for a in args], [(name, self.expression(v)) for name, v in kwargs]

    def _tern(self, node: tuple) -> Run:
        test, then, otherwise = (self.expression(n) for n in node[1:4])
        return lambda scope: then(scope) if test(scope) else otherwise(scope)

    def _un(self, node: tuple) -> Run:
        op, operand = _UNARY[node[1]], self.expression(node[2])
        return lambda scope: op(operand(scope))

    def _list(self, node: tuple) -> Run:
        items = [self.expression(n) for n in node[1]]
        return lambda scope: [item(scope) for item in items]

    def _map(self, node: tuple) -> Run:
        pairs = [(self.expression(k), self.expression(v)) for k, v in node[1]]
        return lambda scope: {key(scope): value(scope) for key, value in pairs}

    def _bin(self, node: tuple) -> Run:
        _, op, left_node, right_node = node
        left, right = self.expression(left_node), self.expression(right_node)
        if op in ("??", "???"):
            return self._coalesce(op, left_node, right_node, left, right)
        if op in ("and", "or"):
            as_bool = self.globals["_pb_bool"]
            if op == "and":
                return lambda scope: as_bool((lambda v: right(scope) if v else v)(left(scope)))
            return lambda scope: as_bool((lambda v: v if v else right(scope))(left(scope)))
        if op in _HELPERS:
            helper = self.globals[_HELPERS[op]]
            return lambda scope: helper(left(scope), right(scope))
        if op in self.env.intercepted_binops:
            # The sandbox's call_binop takes the context Jinja passes and never reads it.
            binop = self.env.call_binop
            return lambda scope: binop(cast(Context, None), op, left(scope), right(scope))
        compare = _COMPARE[op]
        return lambda scope: compare(left(scope), right(scope))

    def _coalesce(self, op: str, left_node: tuple, right_node: tuple, left: Run, right: Run) -> Run:
        """As the emitter writes `??`/`???`: both sides at once when only the right one is pure, else the left
        one judged, then evaluated again (Jinja's code evaluates it twice) or the right one."""
        if not pure(left_node) and pure(right_node):
            both = self.globals["_pb_nc" if op == "??" else "_pb_uc"]
            return lambda scope: both(left(scope), right(scope))
        present = self.globals["_pb_present" if op == "??" else "_pb_defined"]
        return lambda scope: left(scope) if present(left(scope)) else right(scope)


def _printed(run: Run, finalize: Callable[[Any], str]) -> Run:
    return lambda scope: str(finalize(run(scope)))


def _newlines(text: str) -> str:
    """Template text as Jinja's lexer gives it: every `\\r\\n` and `\\r` a `\\n`."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


__all__ = ["Direct", "NotDirect", "Run", "Scope"]
