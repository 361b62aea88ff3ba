"""A small jq: the subset Kestra flows use in `jq(...)` / `jqFirst(...)`, evaluated in Python (no jq binary).

Supported: `.`, `.a.b`, `."a b"`, `.[0]`, `.[-1]`, `.[1:3]`, `.[]`, `?`, `..`, pipes `|`, `,`, `//`, `and`/`or`/`not`,
comparisons, `+ - * / %`, literals, `[...]` and `{...}` construction, `if … then … elif … else … end`, and the
builtins listed in `_BUILTINS` (map, select, keys, length, sort_by, join, tostring, first, …).
Not supported: variables (`as $x`), `reduce`/`foreach`, user functions, `@formats`, assignment operators.
An expression yields a list of results (jq's stream).

One module over 500 lines on purpose: it holds one thing, this jq language (lexer, parser, `Program`
combinators and the builtins table, which all share the `Program` type and jq's truthiness `_truthy`).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from runner.errors import ExpressionError
from runner.expressions import limits
from runner.expressions.scan import scan

Program = Callable[[Any], list[Any]]

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>\"(?:[^\"\\]|\\.)*\")|(?P<field>\.[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>\.\.|//|==|!=|<=|>=|\?|[.\[\](){}|,:<>+\-*/%;]))"
)


class JqError(ExpressionError):
    """A jq program could not be parsed or failed on its input."""


def _tokenize(source: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []

    def refuse(rest: str) -> JqError:
        return JqError(f"unexpected character {rest.strip()[:1]!r} in jq program {source!r}")

    for kind, text in scan(source, _TOKEN, refuse):
        if kind == "num":
            tokens.append(("lit", float(text) if "." in text else int(text)))
        elif kind == "str":
            tokens.append(("lit", json.loads(text, strict=False)))
        else:
            tokens.append((kind, text))
    tokens.append(("end", None))
    return tokens


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, Any]:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def take(self) -> tuple[str, Any]:
        token = self.peek()
        self.pos += 1
        return token

    def accept(self, value: str) -> bool:
        kind, text = self.peek()
        if kind in ("op", "name") and text == value:
            self.pos += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.accept(value):
            raise JqError(f"expected {value!r} in jq program {self.source!r}")

    def parse(self) -> Program:
        program = self.pipe()
        if self.peek()[0] != "end":
            raise JqError(f"unexpected {self.peek()[1]!r} in jq program {self.source!r}")
        return program

    def pipe(self) -> Program:
        left = self.comma()
        while self.accept("|"):
            right = self.comma()
            left = _compose(left, right)
        return left

    def comma(self) -> Program:
        left = self.alternative()
        while self.accept(","):
            right = self.alternative()
            left = _concat(left, right)
        return left

    def alternative(self) -> Program:
        left = self.boolean_or()
        while self.accept("//"):
            right = self.boolean_or()
            left = _alt(left, right)
        return left

    def boolean_or(self) -> Program:
        left = self.boolean_and()
        while self.accept("or"):
            right = self.boolean_and()
            left = _binary(left, right, lambda a, b: _truthy(a) or _truthy(b))
        return left

    def boolean_and(self) -> Program:
        left = self.comparison()
        while self.accept("and"):
            right = self.comparison()
            left = _binary(left, right, lambda a, b: _truthy(a) and _truthy(b))
        return left

    def comparison(self) -> Program:
        left = self.additive()
        for op in ("==", "!=", "<=", ">=", "<", ">"):
            if self.accept(op):
                return _binary(left, self.additive(), _COMPARE[op])
        return left

    def additive(self) -> Program:
        left = self.multiplicative()
        while self.peek() in (("op", "+"), ("op", "-")):
            op = self.take()[1]
            left = _binary(left, self.multiplicative(), _add if op == "+" else _sub)
        return left

    def multiplicative(self) -> Program:
        left = self.postfix()
        while self.peek() in (("op", "*"), ("op", "/"), ("op", "%")):
            op = self.take()[1]
            left = _binary(left, self.postfix(), _ARITH[op])
        return left

    def postfix(self) -> Program:
        term = self.primary()
        while True:
            kind, text = self.peek()
            if kind == "field":
                self.take()
                term = _compose(term, _field(text[1:]))
            elif kind == "op" and text == "." and self.peek(1)[0] == "lit":
                self.take()
                term = _compose(term, _field(self.take()[1]))
            elif kind == "op" and text == "[":
                term = _compose(term, self.bracket())
            elif kind == "op" and text == "." and self.peek(1) == ("op", "["):
                self.take()
            elif kind == "op" and text == "?":
                self.take()
                term = _try(term)
            else:
                return term

    def bracket(self) -> Program:
        self.expect("[")
        if self.accept("]"):
            return _iterate
        start = None if self.peek() == ("op", ":") else self.pipe()
        if self.accept(":"):
            end = None if self.peek() == ("op", "]") else self.pipe()
            self.expect("]")
            return _slice(start, end)
        self.expect("]")
        assert start is not None
        return _index(start)

    def primary(self) -> Program:
        kind, text = self.take()
        if kind == "lit":
            return _constant(text)
        if kind == "field":
            return _field(text[1:])
        if kind == "op":
            return self.primary_op(text)
        if kind == "name":
            return self.primary_name(text)
        raise JqError(f"unexpected end of jq program {self.source!r}")

    def primary_op(self, text: str) -> Program:
        if text == ".":
            if self.peek()[0] == "lit" and isinstance(self.peek()[1], str):
                return _field(self.take()[1])
            return lambda v: [v]
        if text == "..":
            return _recurse
        if text == "(":
            inner = self.pipe()
            self.expect(")")
            return inner
        if text == "[":
            if self.accept("]"):
                return lambda _v: [[]]
            inner = self.pipe()
            self.expect("]")
            return lambda v: [inner(v)]
        if text == "{":
            return self.object()
        if text == "-":
            operand = self.postfix()
            return lambda v: [-x for x in operand(v)]
        raise JqError(f"unexpected {text!r} in jq program {self.source!r}")

    def object(self) -> Program:
        entries: list[tuple[Program, Program]] = []
        while not self.accept("}"):
            kind, text = self.take()
            if kind == "field":
                raise JqError(f"unexpected {text!r} in jq object")
            key_name = text
            key: Program = _constant(key_name) if kind in ("name", "lit") else self._paren_key(text)
            value = self.alternative() if self.accept(":") else _field(key_name)
            entries.append((key, value))
            if not self.accept(","):
                self.expect("}")
                break
        return _build_object(entries)

    def _paren_key(self, text: str) -> Program:
        if text != "(":
            raise JqError(f"unexpected {text!r} in jq object")
        inner = self.pipe()
        self.expect(")")
        return inner

    def primary_name(self, name: str) -> Program:
        if name in ("true", "false", "null"):
            return _constant({"true": True, "false": False, "null": None}[name])
        if name == "if":
            return self.conditional()
        if name == "not":
            return lambda v: [not _truthy(v)]
        args: list[Program] = []
        if self.accept("("):
            args.append(self.pipe())
            while self.accept(";"):
                args.append(self.pipe())
            self.expect(")")
        builtin = _BUILTINS.get((name, len(args)))
        if builtin is None:
            raise JqError(f"jq function {name}/{len(args)} is not supported")
        return lambda v: builtin(v, *args)

    def conditional(self) -> Program:
        cond = self.pipe()
        self.expect("then")
        then = self.pipe()
        if self.accept("elif"):
            return _if(cond, then, self.conditional())
        otherwise: Program = _identity
        if self.accept("else"):
            otherwise = self.pipe()
        self.expect("end")
        return _if(cond, then, otherwise)


def _truthy(value: Any) -> bool:
    """jq's own truthiness (only false and null are falsy): jq language semantics, deliberately not
    `runner.truthy`, which judges conditions (runIf, If, Fail) the way Kestra does."""
    return value is not None and value is not False


def _stream(results: list[Any]) -> list[Any]:
    """A stream of results, its length spent from the render's budget (jq's cost is bounded by it)."""
    if len(results) > limits.MAX_ITEMS:
        raise limits.refuse("jq", f"a stream of {len(results)} results is over the limit of {limits.MAX_ITEMS}")
    limits.spend(len(results) or 1, "jq")
    return results


def _compose(left: Program, right: Program) -> Program:
    def run(v: Any) -> list[Any]:
        out: list[Any] = []
        for mid in left(v):
            out.extend(right(mid))
            if len(out) > limits.MAX_ITEMS:
                _stream(out)
        return _stream(out)

    return run


def _concat(left: Program, right: Program) -> Program:
    return lambda v: _stream(left(v) + right(v))


def _alt(left: Program, right: Program) -> Program:
    def run(v: Any) -> list[Any]:
        try:
            found = [x for x in left(v) if _truthy(x)]
        except JqError:
            found = []
        return found or right(v)

    return run


def _binary(left: Program, right: Program, op: Callable[[Any, Any], Any]) -> Program:
    def run(v: Any) -> list[Any]:
        rights, lefts = right(v), left(v)
        limits.spend(len(rights) * len(lefts), "jq")
        return _stream([op(a, b) for b in rights for a in lefts])

    return run


def _if(cond: Program, then: Program, otherwise: Program) -> Program:
    return lambda v: [out for c in cond(v) for out in (then(v) if _truthy(c) else otherwise(v))]


def _try(inner: Program) -> Program:
    def run(v: Any) -> list[Any]:
        try:
            return inner(v)
        except JqError:
            return []

    return run


def _field(name: str) -> Program:
    def run(v: Any) -> list[Any]:
        if v is None:
            return [None]
        if not isinstance(v, dict):
            raise JqError(f"cannot index {_type(v)} with {name!r}")
        return [v.get(name)]

    return run


def _constant(value: Any) -> Program:
    """A program that yields `value` whatever its input (a literal)."""
    return lambda _v: [value]


def _identity(v: Any) -> list[Any]:
    return [v]


def _index(index: Program) -> Program:
    def run(v: Any) -> list[Any]:
        out: list[Any] = []
        for i in index(v):
            if v is None:
                out.append(None)
            elif isinstance(v, dict) and isinstance(i, str):
                out.append(v.get(i))
            elif isinstance(v, list) and isinstance(i, int | float):
                k = int(i)
                out.append(v[k] if -len(v) <= k < len(v) else None)
            else:
                raise JqError(f"cannot index {_type(v)} with {_type(i)}")
        return out

    return run


def _slice(start: Program | None, end: Program | None) -> Program:
    def run(v: Any) -> list[Any]:
        lo = start(v)[0] if start else None
        hi = end(v)[0] if end else None
        if v is None:
            return [None]
        if not isinstance(v, list | str):
            raise JqError(f"cannot slice {_type(v)}")
        return [v[None if lo is None else int(lo) : None if hi is None else int(hi)]]

    return run


def _iterate(v: Any) -> list[Any]:
    if isinstance(v, list):
        return _stream(list(v))
    if isinstance(v, dict):
        return _stream(list(v.values()))
    raise JqError(f"cannot iterate over {_type(v)}")


def _recurse(v: Any) -> list[Any]:
    out = [v]
    if isinstance(v, list | dict):
        for child in _iterate(v):
            out.extend(_recurse(child))
            if len(out) > limits.MAX_ITEMS:
                _stream(out)
    return out


def _build_object(entries: list[tuple[Program, Program]]) -> Program:
    def run(v: Any) -> list[Any]:
        results: list[dict[str, Any]] = [{}]
        for key, value in entries:
            keys, values = key(v), value(v)
            limits.spend(len(results) * len(keys) * len(values), "jq")
            results = _stream([{**r, str(k): x} for r in results for k in keys for x in values])
        return results

    return run


def _type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object" if isinstance(v, dict) else type(v).__name__


def _add(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        return {**a, **b}
    limits.check_join("jq +", a, b)
    try:
        return a + b
    except TypeError:
        raise JqError(f"{_type(a)} and {_type(b)} cannot be added") from None


def _sub(a: Any, b: Any) -> Any:
    if isinstance(a, list) and isinstance(b, list):
        limits.spend(len(a) * len(b), "jq -")
        return [x for x in a if x not in b]
    try:
        return a - b
    except TypeError:
        raise JqError(f"{_type(a)} and {_type(b)} cannot be subtracted") from None


def _arith(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(a: Any, b: Any) -> Any:
        limits.check_repeat("jq *", a, b)
        limits.check_repeat("jq *", b, a)
        try:
            result = op(a, b)
        except (TypeError, ZeroDivisionError) as exc:
            raise JqError(str(exc)) from None
        return int(result) if isinstance(result, float) and result.is_integer() else result

    return run


def _order(v: Any) -> tuple[int, Any]:
    rank = {"null": 0, "boolean": 1, "number": 2, "string": 3, "array": 4, "object": 5}.get(_type(v), 6)
    if isinstance(v, dict):
        return rank, sorted((k, _order(x)) for k, x in v.items())
    if isinstance(v, list):
        return rank, [_order(x) for x in v]
    return rank, v


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: _order(a) < _order(b),
    "<=": lambda a, b: _order(a) <= _order(b),
    ">": lambda a, b: _order(a) > _order(b),
    ">=": lambda a, b: _order(a) >= _order(b),
}
_ARITH = {
    "*": _arith(lambda a, b: a * b),
    "/": _arith(lambda a, b: a.split(b) if isinstance(a, str) else a / b),
    "%": _arith(lambda a, b: int(a) % int(b)),
}


def _tostring(v: Any) -> str:
    if not isinstance(v, str):
        limits.check_size("jq tostring", v)
    return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _tonumber(v: Any) -> Any:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return v
    try:
        number = float(v)
    except (TypeError, ValueError):
        raise JqError(f"cannot parse {v!r} as a number") from None
    return int(number) if number.is_integer() else number


def _length(v: Any) -> Any:
    if v is None:
        return 0
    if isinstance(v, bool):
        raise JqError("boolean has no length")
    if isinstance(v, int | float):
        return abs(v)
    return len(v)


def _keys(v: Any) -> list[Any]:
    if isinstance(v, dict):
        return sorted(v)
    if isinstance(v, list):
        return list(range(len(v)))
    raise JqError(f"{_type(v)} has no keys")


def _by(v: Any, f: Program) -> list[tuple[Any, Any]]:
    if not isinstance(v, list):
        raise JqError(f"cannot sort {_type(v)}")
    return [(_order(f(x)), x) for x in v]


def _group_by(v: Any, f: Program) -> list[Any]:
    groups: dict[Any, list[Any]] = {}
    for key, item in sorted(_by(v, f), key=lambda p: p[0]):
        groups.setdefault(repr(key), []).append(item)
    return list(groups.values())


def _flatten(v: Any, depth: float = float("inf")) -> list[Any]:
    out: list[Any] = []
    for x in v:
        if isinstance(x, list) and depth > 0:
            out.extend(_flatten(x, depth - 1))
        else:
            out.append(x)
    return out


def _unique(items: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for item in sorted(items, key=_order):
        if not seen or seen[-1] != item:
            seen.append(item)
    return seen


def _one(f: Callable[[Any], Any]) -> Callable[..., list[Any]]:
    return lambda v: [f(v)]


def _each_arg(f: Callable[[Any, Any], Any]) -> Callable[..., list[Any]]:
    return lambda v, a: [f(v, x) for x in a(v)]


def _range_end(value: Any) -> int:
    end = int(value)
    limits.check_count("jq range", "length", end, limits.MAX_ITEMS)
    limits.spend(max(end, 0), "jq range")
    return end


def _join(items: Any, separator: str) -> str:
    texts = ["" if x is None else _tostring(x) for x in _iterate(items)]
    limits.check_text("jq join", sum(len(t) for t in texts) + len(separator) * len(texts))
    return separator.join(texts)


_BUILTINS: dict[tuple[str, int], Callable[..., list[Any]]] = {
    ("empty", 0): lambda v: [],
    ("error", 0): lambda v: (_ for _ in ()).throw(JqError(_tostring(v))),
    ("length", 0): _one(_length),
    ("keys", 0): _one(_keys),
    ("values", 0): lambda v: [v] if v is not None else [],
    ("type", 0): _one(_type),
    ("tostring", 0): _one(_tostring),
    ("tonumber", 0): _one(_tonumber),
    ("tojson", 0): _one(lambda v: _tostring(v) if not isinstance(v, str) else json.dumps(v, ensure_ascii=False)),
    ("fromjson", 0): _one(lambda v: limits.check_data("jq fromjson", json.loads(v))),
    ("ascii_downcase", 0): _one(lambda v: v.lower()),
    ("ascii_upcase", 0): _one(lambda v: v.upper()),
    ("reverse", 0): _one(lambda v: v[::-1] if v is not None else []),
    ("sort", 0): _one(lambda v: sorted(v, key=_order)),
    ("unique", 0): _one(_unique),
    ("add", 0): lambda v: [_sum(_iterate(v))],
    ("min", 0): _one(lambda v: min(v, key=_order) if v else None),
    ("max", 0): _one(lambda v: max(v, key=_order) if v else None),
    ("floor", 0): _one(lambda v: int(v // 1)),
    ("first", 0): _one(lambda v: v[0] if v else None),
    ("last", 0): _one(lambda v: v[-1] if v else None),
    ("flatten", 0): _one(_flatten),
    ("to_entries", 0): _one(lambda v: [{"key": k, "value": x} for k, x in v.items()]),
    ("from_entries", 0): _one(lambda v: {str(e.get("key", e.get("name"))): e.get("value") for e in v}),
    ("any", 0): _one(lambda v: any(_truthy(x) for x in v)),
    ("all", 0): _one(lambda v: all(_truthy(x) for x in v)),
    ("not", 0): _one(lambda v: not _truthy(v)),
    ("map", 1): lambda v, f: [[out for x in _iterate(v) for out in f(x)]],
    ("map_values", 1): lambda v, f: [
        {k: f(x)[0] for k, x in v.items()} if isinstance(v, dict) else [f(x)[0] for x in v]
    ],
    ("select", 1): lambda v, f: [v] if any(_truthy(c) for c in f(v)) else [],
    ("sort_by", 1): lambda v, f: [[x for _, x in sorted(_by(v, f), key=lambda p: p[0])]],
    ("group_by", 1): lambda v, f: [_group_by(v, f)],
    ("unique_by", 1): lambda v, f: [[g[0] for g in _group_by(v, f)]],
    ("min_by", 1): lambda v, f: [min(_by(v, f), key=lambda p: p[0])[1] if v else None],
    ("max_by", 1): lambda v, f: [max(_by(v, f), key=lambda p: p[0])[1] if v else None],
    ("first", 1): lambda v, f: f(v)[:1],
    ("last", 1): lambda v, f: f(v)[-1:],
    ("has", 1): _each_arg(lambda v, k: (k in v) if isinstance(v, dict) else 0 <= int(k) < len(v)),
    ("contains", 1): _each_arg(lambda v, x: x in v if isinstance(v, str) else _contains(v, x)),
    ("join", 1): _each_arg(_join),
    ("split", 1): _each_arg(lambda v, s: v.split(s)),
    ("test", 1): _each_arg(lambda v, r: limits.regex_search("jq test", r, v) is not None),
    ("startswith", 1): _each_arg(lambda v, s: v.startswith(s)),
    ("endswith", 1): _each_arg(lambda v, s: v.endswith(s)),
    ("ltrimstr", 1): _each_arg(lambda v, s: v[len(s) :] if isinstance(v, str) and v.startswith(s) else v),
    ("rtrimstr", 1): _each_arg(lambda v, s: v[: -len(s)] if isinstance(v, str) and s and v.endswith(s) else v),
    ("flatten", 1): _each_arg(lambda v, d: _flatten(v, d)),
    ("range", 1): lambda v, n: _stream([i for m in n(v) for i in range(_range_end(m))]),
    ("any", 1): lambda v, f: [any(_truthy(c) for x in _iterate(v) for c in f(x))],
    ("all", 1): lambda v, f: [all(_truthy(c) for x in _iterate(v) for c in f(x))],
}


def _sum(items: list[Any]) -> Any:
    total: Any = None
    for item in items:
        total = _add(total, item)
    return total


def _contains(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return all(k in a and _contains(a[k], x) for k, x in b.items())
    if isinstance(a, list) and isinstance(b, list):
        return all(any(_contains(x, y) for x in a) for y in b)
    if isinstance(a, str) and isinstance(b, str):
        return b in a
    return a == b


@lru_cache(maxsize=512)
def compile_jq(source: str) -> Program:
    """The compiled jq program (cached by source)."""
    return _Parser(source).parse()


def jq(value: Any, source: str) -> list[Any]:
    """All results of the jq program `source` on `value` (a string holding JSON is parsed first)."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    try:
        return compile_jq(source)(value)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, JqError | limits.LimitError):
            raise
        raise JqError(f"jq {source!r} failed: {exc}") from None
