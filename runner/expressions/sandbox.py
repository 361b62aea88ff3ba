"""The sandbox every expression runs in, whichever way it is evaluated: undefined values that fail when used (and
say what was undefined), strict filters and functions, the sandboxed environment's attribute, item and operator
rules, and how a value prints.

The renderer builds one `Sandbox` per process; Jinja-compiled templates and directly evaluated ones
(`runner.expressions.direct`) both go through its `getitem`, `getattr`, `call`, `call_binop` and `finalize`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import TemplateRuntimeError, Undefined, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

from runner.expressions import filters as rf
from runner.expressions import limits
from runner.expressions.functions import check_arguments, signature_of

# ---------------------------------------------------------------------------------------------- undefined


class PebbleUndefinedError(UndefinedError):
    """An undefined variable was used; `path` is the chain of keys from the first missing one."""

    def __init__(self, path: tuple[Any, ...], top_level: bool) -> None:
        super().__init__(f"undefined variable {display(path)!r}")
        self.path = path
        self.top_level = top_level


class PebbleUndefined(Undefined):
    """Chainable (`a.b.c` of an undefined `a` is undefined) but fails as soon as it is printed or used."""

    __slots__ = ("_pb_path",)

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[TemplateRuntimeError] = UndefinedError,
        path: tuple[Any, ...] | None = None,
    ) -> None:
        super().__init__(hint, obj, name, exc)
        self._pb_path = path if path is not None else ((name,) if name is not None else ())

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        if self._undefined_hint is not None or self._undefined_exception is not UndefinedError:
            raise self._undefined_exception(self._undefined_message)
        raise PebbleUndefinedError(self._pb_path, self._undefined_obj is missing)

    def _chain(self, key: Any) -> PebbleUndefined:
        if self._undefined_hint is not None:
            return self
        return PebbleUndefined(
            obj=self._undefined_obj, name=key, exc=self._undefined_exception, path=(*self._pb_path, key)
        )

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return self._chain(name)

    def __getitem__(self, key: Any) -> Any:
        return self._chain(key)

    def __repr__(self) -> str:
        return f"PebbleUndefined({display(self._pb_path)!r})"


_FAILING_DUNDERS = (
    "__str__ __iter__ __len__ __eq__ __ne__ __bool__ __hash__ __contains__ __add__ __radd__ __sub__ __rsub__ __mul__"
    " __rmul__ __truediv__ __rtruediv__ __floordiv__ __rfloordiv__ __mod__ __rmod__ __pos__ __neg__ __call__ __lt__"
    " __le__ __gt__ __ge__ __int__ __float__ __complex__ __pow__ __rpow__"
)
for _dunder in _FAILING_DUNDERS.split():
    setattr(PebbleUndefined, _dunder, PebbleUndefined._fail_with_undefined_error)


def display(path: tuple[Any, ...]) -> str:
    out = ""
    for key in path:
        if isinstance(key, str) and key.isidentifier():
            out += ("." if out else "") + key
        else:
            out += f"[{key!r}]"
    return out


def strict(
    function: Callable[..., Any], kind: str | None = None, name: str = "", undefined_safe: bool = False
) -> Callable[..., Any]:
    """Make a filter/function fail on an undefined argument instead of receiving it (unless `undefined_safe`);
    with `kind` (filter, function, test), a call with arguments it does not take fails with a message naming
    those it takes."""
    skip = (1 if kind in ("filter", "test") else 0) + (1 if getattr(function, "jinja_pass_arg", None) else 0)
    signature = signature_of(function) if kind is not None else None

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        for arg in () if undefined_safe else (*args, *kwargs.values()):
            if isinstance(arg, Undefined):
                arg._fail_with_undefined_error()
        if kind is not None:
            check_arguments(kind, name, signature, args[skip:], kwargs, skip)
        return function(*args, **kwargs)

    return run


# ---------------------------------------------------------------------------------------------- sandbox


class Sandbox(ImmutableSandboxedEnvironment):
    """No `_` attributes, no callables through attribute access, map keys before attributes, bounded `*`."""

    intercepted_binops = frozenset({"*", "+", "%"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr.startswith("_") or callable(value):
            return False
        return super().is_safe_attribute(obj, attr, value)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Mapping):
            try:
                return obj[argument]
            except (KeyError, TypeError):
                return self.undefined(obj=obj, name=argument)
        if isinstance(obj, list | tuple) and isinstance(argument, str):
            return self.undefined(obj=obj, name=argument)
        return self._no_callable(obj, argument, super().getitem(obj, argument))

    def getattr(self, obj: Any, attribute: str) -> Any:
        return self._no_callable(obj, attribute, super().getattr(obj, attribute))

    def _no_callable(self, obj: Any, name: Any, value: Any) -> Any:
        # Jinja hands out a sandboxed str.format without asking is_safe_attribute; no method is data here.
        if callable(value) and not isinstance(value, Undefined):
            return self.unsafe_undefined(obj, str(name))
        return value

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            limits.check_repeat("*", left, right)
            limits.check_repeat("*", right, left)
        elif operator == "+":
            limits.check_join("+", left, right)
        elif operator == "%" and isinstance(left, str):
            limits.check_format("%", left)
        return super().call_binop(context, operator, left, right)


def finalize(value: Any) -> str:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return rf.to_text(value)


def loop_items(value: Any) -> list[Any]:
    items = rf.loop_items(value)
    limits.spend(len(items), "for")
    return limits.TimedList(items)


def loop_pairs(value: Any) -> list[tuple[Any, Any]]:
    pairs = rf.loop_pairs(value)
    limits.spend(len(pairs), "for")
    return limits.TimedList(pairs)


__all__ = [
    "PebbleUndefined",
    "PebbleUndefinedError",
    "Sandbox",
    "display",
    "finalize",
    "loop_items",
    "loop_pairs",
    "strict",
]
