"""Pebble templates translated to Jinja2 source: a segmenter, an expression tokenizer and a Pratt parser.

The template is split into text, `{{ expr }}`, `{% tag %}` and `{# comment #}` by a scanner that respects string
literals (so `{{ '}}' }}` works). Each expression is parsed with Pebble's grammar and precedence (`??` and `???`
at 120, `~` at 110 binding tighter than `|` at 100, `is`/`contains` at 20, ternary lowest) and emitted as a fully
parenthesised Jinja expression; `.name` becomes `["name"]` so map keys win over Python attributes
(`outputs.x.values`, `taskrun.items`). Text is passed to Jinja behind delimiters made of control characters, so no
user text is ever read as Jinja syntax: `${#arr[@]}` in a bash script stays text, and an unclosed `{#` too.

One module over 500 lines on purpose: it holds one thing, the Pebble-to-Jinja translator, whose scanner,
tokenizer, parser and emitter share the token kinds, the precedence table and the `Translation` they build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from runner.errors import ExpressionError
from runner.expressions.scan import scan


def is_template(text: str) -> bool:
    """Whether rendering `text` may change it: it holds `{{` or `{%` (anything else renders to itself)."""
    return "{{" in text or "{%" in text


# Jinja delimiters no template text can contain (a \x02 in text is emitted as an expression).
VAR_START, VAR_END = "\x02{", "}\x03"
BLOCK_START, BLOCK_END = "\x02%", "%\x03"
COMMENT_START, COMMENT_END = "\x02#", "#\x03"

BINARY_PRECEDENCE: dict[str, int] = {
    "or": 10,
    "and": 15,
    "is": 20,
    "contains": 20,
    "==": 30,
    "equals": 30,
    "!=": 30,
    "<": 30,
    ">": 30,
    "<=": 30,
    ">=": 30,
    "+": 40,
    "-": 40,
    "*": 60,
    "/": 60,
    "%": 60,
    "|": 100,
    "~": 110,
    "..": 120,
    "??": 120,
    "???": 120,
}
UNARY_PRECEDENCE = 500
LITERAL_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None, "none": None}
JINJA_RESERVED = frozenset({"in", "if", "else", "True", "False", "None", "loop_", "self"})
LOOP_ATTRIBUTES = {"index": "index0", "revindex": "revindex0"}

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>\?\?\?|\?\?|==|!=|<=|>=|\.\.|[?:<>+\-*/%~|.,()\[\]{}=]))",
    re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "b": "\b", "f": "\f", "0": "\0"}
_END_RAW = re.compile(r"\{%-?\s*end(raw|verbatim)\s*-?%\}")


class PebbleSyntaxError(ExpressionError):
    """The template is not valid Pebble (or uses something gitsync does not support)."""


@dataclass(frozen=True)
class Chain:
    """An attribute/subscript chain in the source, for naming what was undefined: `inputs.nope`."""

    root: str
    keys: tuple[Any, ...]
    """Each static key (a name or a literal), or `Chain.DYNAMIC` for `[expr]`."""
    displays: tuple[str, ...]
    where: str
    """The `{{ … }}` or `{% … %}` the chain is in."""

    DYNAMIC = object()


Piece = tuple[str, Any]
"""("text", the text) or ("expr", the parsed expression's tree) of a template without tags."""


@dataclass(frozen=True)
class Translation:
    jinja: str
    single: str | None
    """The Jinja expression when the template is exactly one `{{ expr }}` (its value is typed)."""
    chains: tuple[Chain, ...]
    names: frozenset[str]
    """Function names called by the template."""
    pieces: tuple[Piece, ...] | None = None
    """The template's text and parsed `{{ }}` in order, when it has no `{% %}` tag (`runner.expressions.direct`
    evaluates these without Jinja)."""


@dataclass(frozen=True)
class Catalog:
    """What the translator accepts: function, filter and test names."""

    functions: frozenset[str]
    filters: frozenset[str]
    tests: frozenset[str]


# ---------------------------------------------------------------------------------------------- segmenting


def _scan_close(text: str, start: int, close: str) -> int:
    """Index of `close` after `start`, outside string literals and braces; -1 if none."""
    depth = 0
    quote = ""
    i = start
    n = len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif depth == 0 and text.startswith(close, i):
            return i
        elif ch == "{":
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
        i += 1
    return -1


def _next_open(text: str, pos: int) -> int:
    i = text.find("{", pos)
    while i != -1 and (i + 1 >= len(text) or text[i + 1] not in "{%#"):
        i = text.find("{", i + 1)
    return i


def segments(text: str) -> list[tuple[str, str]]:
    """The template as (kind, content) pairs: kind is text, expr or tag; whitespace control applied."""
    out: list[list[Any]] = []  # [kind, content, trim_left, trim_right]
    pos = 0
    while pos < len(text):
        i = _next_open(text, pos)
        if i == -1:
            out.append(["text", text[pos:], False, False])
            break
        out.append(["text", text[pos:i], False, False])
        pos = _segment_at(text, i, out)
    _apply_trims(out)
    return [(kind, content) for kind, content, _, _ in out if kind != "text" or content]


def _segment_at(text: str, i: int, out: list[list[Any]]) -> int:
    marker = text[i + 1]
    if marker == "#":
        end = text.find("#}", i + 2)
        if (i > 0 and text[i - 1] == "$") or end == -1:
            out.append(["text", text[i : i + 2], False, False])
            return i + 2
        inner = text[i + 2 : end]
        out.append(["comment", "", inner.startswith("-"), inner.endswith("-")])
        return end + 2
    close = "}}" if marker == "{" else "%}"
    j = _scan_close(text, i + 2, close)
    if j == -1:
        raise PebbleSyntaxError(f"unclosed {text[i : i + 2]!r} (no matching {close!r}) near {text[i : i + 40]!r}")
    inner = text[i + 2 : j]
    trim_left, trim_right = inner.startswith("-"), inner.endswith("-") and len(inner) > 1
    inner = inner[1 if trim_left else 0 : len(inner) - (1 if trim_right else 0)].strip()
    if marker == "{":
        out.append(["expr", inner, trim_left, trim_right])
        return j + 2
    if inner in ("raw", "verbatim"):
        raw_end = _END_RAW.search(text, j + 2)
        if raw_end is None:
            raise PebbleSyntaxError(f"unclosed {{% {inner} %}} (no {{% end{inner} %}})")
        out.append(["text", text[j + 2 : raw_end.start()], trim_left, trim_right])
        return raw_end.end()
    out.append(["tag", inner, trim_left, trim_right])
    return j + 2


def _apply_trims(out: list[list[Any]]) -> None:
    for index, (kind, _, trim_left, trim_right) in enumerate(out):
        if kind == "text":
            continue
        if trim_left and index > 0 and out[index - 1][0] == "text":
            out[index - 1][1] = out[index - 1][1].rstrip()
        if trim_right and index + 1 < len(out) and out[index + 1][0] == "text":
            out[index + 1][1] = out[index + 1][1].lstrip()


# ---------------------------------------------------------------------------------------------- tokens


def _unescape(body: str) -> str:
    if "\\" not in body:
        return body
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body, flags=re.DOTALL)


def tokenize(source: str) -> list[tuple[str, Any]]:
    """Pebble expression tokens: (num|str|name|op, value), ending with (end, None)."""
    tokens: list[tuple[str, Any]] = []

    def refuse(rest: str) -> PebbleSyntaxError:
        return PebbleSyntaxError(f"unexpected character {rest.lstrip()[:1]!r}")

    for kind, text in scan(source, _TOKEN, refuse):
        if kind == "num":
            tokens.append(("num", float(text) if "." in text else int(text)))
        elif kind == "str":
            tokens.append(("str", _unescape(text[1:-1])))
        else:
            tokens.append((kind, text))
    tokens.append(("end", None))
    return tokens


# ---------------------------------------------------------------------------------------------- parsing


class _Parser:
    """Pebble's expression grammar, producing tuple nodes (kind, ...)."""

    def __init__(self, source: str, catalog: Catalog) -> None:
        self.tokens = tokenize(source)
        self.pos = 0
        self.catalog = catalog

    def peek(self, offset: int = 0) -> tuple[str, Any]:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def take(self) -> tuple[str, Any]:
        token = self.peek()
        self.pos += 1
        return token

    def at(self, *values: str) -> bool:
        kind, text = self.peek()
        return kind in ("op", "name") and text in values

    def expect(self, value: str) -> None:
        if not self.at(value):
            found = self.peek()[1]
            raise PebbleSyntaxError(f"expected {value!r} but found {'the end' if found is None else repr(found)}")
        self.pos += 1

    def done(self) -> None:
        if self.peek()[0] != "end":
            raise PebbleSyntaxError(f"unexpected {self.peek()[1]!r}")

    def expression(self, min_precedence: int = 0) -> tuple:
        left = self.unary()
        while True:
            op = self.binary_operator()
            if op is None or BINARY_PRECEDENCE[op] < min_precedence:
                break
            left = self.binary(op, left)
        if min_precedence == 0 and self.at("?"):
            self.take()
            then = self.expression()
            self.expect(":")
            return ("tern", left, then, self.expression())
        return left

    def binary_operator(self) -> str | None:
        kind, text = self.peek()
        if kind == "op" and text in BINARY_PRECEDENCE:
            return text
        if kind == "name" and text in ("or", "and", "is", "contains", "equals"):
            return text
        return None

    def binary(self, op: str, left: tuple) -> tuple:
        self.take()
        precedence = BINARY_PRECEDENCE[op]
        if op == "|":
            return self.filter(left)
        if op == "is":
            negated = self.at("not")
            if negated:
                self.take()
            name, args, kwargs = self.invocation(self.catalog.tests, "test")
            return ("test", left, name, args, kwargs, negated)
        return ("bin", op, left, self.expression(precedence + 1))

    def filter(self, left: tuple) -> tuple:
        name, args, kwargs = self.invocation(self.catalog.filters, "filter")
        return ("filter", left, name, args, kwargs)

    def invocation(self, known: frozenset[str], what: str) -> tuple[str, list, list]:
        kind, name = self.take()
        if kind != "name":
            raise PebbleSyntaxError(f"expected a {what} name after {'|' if what == 'filter' else 'is'}")
        if name not in known:
            raise PebbleSyntaxError(f"unknown {what} {name!r}")
        args, kwargs = self.arguments() if self.at("(") else ([], [])
        return name, args, kwargs

    def arguments(self) -> tuple[list, list]:
        self.expect("(")
        args: list = []
        kwargs: list = []
        while not self.at(")"):
            if self.peek()[0] == "name" and self.peek(1) == ("op", "="):
                name = self.take()[1]
                self.take()
                kwargs.append((name, self.expression()))
            elif kwargs:
                raise PebbleSyntaxError("a positional argument follows a named one")
            else:
                args.append(self.expression())
            if not self.at(","):
                break
            self.take()
        self.expect(")")
        return args, kwargs

    def unary(self) -> tuple:
        if self.at("not", "-", "+"):
            op = self.take()[1]
            return ("un", op, self.expression(UNARY_PRECEDENCE))
        return self.postfix(self.primary())

    def primary(self) -> tuple:
        kind, value = self.take()
        if kind in ("num", "str"):
            return ("lit", value)
        if kind == "name":
            return self.primary_name(value)
        if kind == "op" and value == "(":
            inner = self.expression()
            self.expect(")")
            return inner
        if kind == "op" and value == "[":
            return ("list", self.sequence("]"))
        if kind == "op" and value == "{":
            return self.mapping()
        raise PebbleSyntaxError("unexpected end of expression" if kind == "end" else f"unexpected {value!r}")

    def primary_name(self, name: str) -> tuple:
        if name in LITERAL_NAMES:
            return ("lit", LITERAL_NAMES[name])
        if self.at("("):
            if name not in self.catalog.functions:
                raise PebbleSyntaxError(f"unknown function {name!r}")
            args, kwargs = self.arguments()
            return ("call", name, args, kwargs)
        if name.startswith("__") or name in JINJA_RESERVED:
            raise PebbleSyntaxError(f"{name!r} is not a variable name")
        return ("name", name)

    def sequence(self, close: str) -> list:
        items = []
        while not self.at(close):
            items.append(self.expression())
            if not self.at(","):
                break
            self.take()
        self.expect(close)
        return items

    def mapping(self) -> tuple:
        pairs = []
        while not self.at("}"):
            key = self.expression()
            self.expect(":")
            pairs.append((key, self.expression()))
            if not self.at(","):
                break
            self.take()
        self.expect("}")
        return ("map", pairs)

    def postfix(self, node: tuple) -> tuple:
        while True:
            if self.at("."):
                self.take()
                kind, name = self.take()
                if kind == "num":
                    node = ("item", node, ("lit", name))
                    continue
                if kind != "name":
                    raise PebbleSyntaxError("expected an attribute name after '.'")
                if self.at("("):
                    raise PebbleSyntaxError(f"method calls are not allowed ('.{name}(…)')")
                node = ("attr", node, name)
            elif self.at("["):
                self.take()
                key = self.expression()
                self.expect("]")
                node = ("item", node, key)
            else:
                return node


# ---------------------------------------------------------------------------------------------- emitting


def _literal(value: Any) -> str:
    if value is None:
        return "none"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return repr(value)


def pure(node: Any) -> bool:
    """No function call or filter inside: evaluating it twice is cheap and has no effect."""
    if isinstance(node, tuple) and node and isinstance(node[0], str):
        if node[0] in ("call", "filter"):
            return False
        return all(pure(x) for x in node[1:] if isinstance(x, tuple | list))
    if isinstance(node, tuple | list):
        return all(pure(x) for x in node if isinstance(x, tuple | list))
    return True


class _Emitter:
    def __init__(self) -> None:
        self.chains: list[Chain] = []
        self.calls: set[str] = set()
        self.where = ""

    def emit(self, node: tuple) -> str:
        return getattr(self, "_" + node[0])(node)

    def _lit(self, node: tuple) -> str:
        return _literal(node[1])

    def _name(self, node: tuple) -> str:
        self.chains.append(Chain(node[1], (), (), self.where))
        return node[1]

    def _attr(self, node: tuple) -> str:
        self._record(node)
        base, name = node[1], node[2]
        if base == ("name", "loop") and name in LOOP_ATTRIBUTES:
            return f"loop.{LOOP_ATTRIBUTES[name]}"
        return f"{self.emit(base)}[{name!r}]"

    def _item(self, node: tuple) -> str:
        self._record(node)
        return f"{self.emit(node[1])}[{self.emit(node[2])}]"

    def _record(self, node: tuple) -> None:
        keys: list[Any] = []
        displays: list[str] = []
        while node[0] in ("attr", "item"):
            if node[0] == "attr":
                keys.append(node[2])
                displays.append("." + node[2])
            elif node[2][0] == "lit":
                keys.append(node[2][1])
                displays.append(f"[{node[2][1]!r}]")
            else:
                keys.append(Chain.DYNAMIC)
                displays.append("[…]")
            node = node[1]
        root = node[1] if node[0] == "name" else (f"{node[1]}(…)" if node[0] == "call" else "(…)")
        self.chains.append(Chain(root, tuple(reversed(keys)), tuple(reversed(displays)), self.where))

    def _args(self, args: list, kwargs: list) -> str:
        parts = [self.emit(a) for a in args] + [f"{k}={self.emit(v)}" for k, v in kwargs]
        return ", ".join(parts)

    def _call(self, node: tuple) -> str:
        self.calls.add(node[1])
        return f"{node[1]}({self._args(node[2], node[3])})"

    def _filter(self, node: tuple) -> str:
        _, value, name, args, kwargs = node
        suffix = f"({self._args(args, kwargs)})" if args or kwargs else ""
        return f"(({self.emit(value)})|{name}{suffix})"

    def _test(self, node: tuple) -> str:
        _, value, name, args, kwargs, negated = node
        suffix = f"({self._args(args, kwargs)})" if args or kwargs else ""
        return f"(({self.emit(value)}) is {'not ' if negated else ''}{name}{suffix})"

    def _tern(self, node: tuple) -> str:
        return f"(({self.emit(node[2])}) if ({self.emit(node[1])}) else ({self.emit(node[3])}))"

    def _un(self, node: tuple) -> str:
        op = node[1]
        return f"({op}{' ' if op == 'not' else ''}({self.emit(node[2])}))"

    def _list(self, node: tuple) -> str:
        return "[" + ", ".join(self.emit(x) for x in node[1]) + "]"

    def _map(self, node: tuple) -> str:
        return "{" + ", ".join(f"{self.emit(k)}: {self.emit(v)}" for k, v in node[1]) + "}"

    def _bin(self, node: tuple) -> str:
        _, op, left, right = node
        if op in ("??", "???"):
            return self._coalesce(op, left, right)
        lhs, rhs = self.emit(left), self.emit(right)
        if op in ("and", "or"):
            return f"_pb_bool(({lhs}) {op} ({rhs}))"
        helper = {"/": "_pb_div", "~": "_pb_concat", "contains": "_pb_contains", "..": "_pb_range"}.get(op)
        if helper:
            return f"{helper}({lhs}, {rhs})"
        return f"(({lhs}) {'==' if op == 'equals' else op} ({rhs}))"

    def _coalesce(self, op: str, left: tuple, right: tuple) -> str:
        test = "_pb_present" if op == "??" else "_pb_defined"
        lhs, rhs = self.emit(left), self.emit(right)
        if not pure(left) and pure(right):
            return f"{'_pb_nc' if op == '??' else '_pb_uc'}({lhs}, {rhs})"
        return f"(({lhs}) if {test}({lhs}) else ({rhs}))"


# ---------------------------------------------------------------------------------------------- templates


def _parse(source: str, catalog: Catalog) -> tuple:
    if not source:
        raise PebbleSyntaxError("empty expression")
    parser = _Parser(source, catalog)
    node = parser.expression()
    parser.done()
    return node


def _expression(source: str, catalog: Catalog, emitter: _Emitter) -> str:
    return emitter.emit(_parse(source, catalog))


def _tag(source: str, catalog: Catalog, emitter: _Emitter) -> str:
    parser = _Parser(source, catalog)
    kind, name = parser.take()
    if kind != "name":
        raise PebbleSyntaxError(f"invalid tag {{% {source} %}}")
    if name in ("else", "endif", "endfor"):
        parser.done()
        return name
    rest = source[len(name) :].strip()
    if name == "if":
        return "if " + _expression(rest, catalog, emitter)
    if name in ("elseif", "elif"):
        return "elif " + _expression(rest, catalog, emitter)
    if name == "for":
        return _for_tag(rest, catalog, emitter)
    if name == "set":
        match = re.fullmatch(r"([A-Za-z][A-Za-z0-9_]*)\s*=(.*)", rest, re.DOTALL)
        if not match or match.group(1) in JINJA_RESERVED or match.group(1) in LITERAL_NAMES:
            raise PebbleSyntaxError(f"invalid set tag {{% {source} %}}")
        return f"set {match.group(1)} = {_expression(match.group(2).strip(), catalog, emitter)}"
    raise PebbleSyntaxError(f"unsupported tag {{% {name} %}}")


def _for_tag(rest: str, catalog: Catalog, emitter: _Emitter) -> str:
    match = re.fullmatch(r"([A-Za-z]\w*)\s*(?:,\s*([A-Za-z]\w*)\s*)?in\s(.*)", rest, re.DOTALL)
    if not match:
        raise PebbleSyntaxError(f"invalid for tag {{% for {rest} %}}")
    first, second, iterable = match.groups()
    for target in (first, second):
        if target and (target in JINJA_RESERVED or target in LITERAL_NAMES or target == "loop"):
            raise PebbleSyntaxError(f"{target!r} cannot be a loop variable")
    source = _expression(iterable.strip(), catalog, emitter)
    if second:
        return f"for {first}, {second} in _pb_items({source})"
    return f"for {first} in _pb_iter({source})"


def _text(content: str) -> str:
    if "\x02" not in content:
        return content
    return content.replace("\x02", f"{VAR_START} '\\x02' {VAR_END}")


def translate(template: str, catalog: Catalog) -> Translation:
    """The Jinja source of a Pebble template (raises PebbleSyntaxError)."""
    emitter = _Emitter()
    parts: list[str] = []
    pieces = segments(template)
    single = None
    parsed: list[Piece] | None = []
    for kind, content in pieces:
        if kind == "text":
            parts.append(_text(content))
            if parsed is not None:
                parsed.append(("text", content))
        elif kind == "expr":
            emitter.where = f"{{{{ {content} }}}}"
            try:
                node = _parse(content, catalog)
                source = emitter.emit(node)
            except PebbleSyntaxError as exc:
                raise PebbleSyntaxError(f"{exc} in {{{{ {content} }}}}") from None
            parts.append(f"{VAR_START} {source} {VAR_END}")
            single = source
            if parsed is not None:
                parsed.append(("expr", node))
        elif kind == "tag":
            parsed = None
            emitter.where = f"{{% {content} %}}"
            try:
                parts.append(f"{BLOCK_START} {_tag(content, catalog, emitter)} {BLOCK_END}")
            except PebbleSyntaxError as exc:
                raise PebbleSyntaxError(f"{exc} in {{% {content} %}}") from None
    is_single = len(pieces) == 1 and pieces[0][0] == "expr" and template.strip().startswith("{{")
    return Translation(
        "".join(parts),
        single if is_single else None,
        tuple(emitter.chains),
        frozenset(emitter.calls),
        None if parsed is None else tuple(parsed),
    )
