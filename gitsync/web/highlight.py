"""YAML source as highlighted HTML lines (Pygments), and the line each task is declared on.

Pygments is imported by the first highlight, never by an idle daemon. Each line is one element anchored
`id="L<n>"` (the graph's nodes and the revision links point at them); its number is drawn by the stylesheet from
`data-n`, so copying the code copies no numbers. Every character of the source is escaped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from typing import Any

import yaml

EXPRESSION = re.compile(r"\{\{.*?\}\}|\{%.*?%\}")
CATEGORIES = (
    ("Comment", "c"),
    ("Name.Tag", "key"),
    ("Name.Constant", "kw"),
    ("Keyword", "kw"),
    ("Name.Label", "var"),
    ("Name.Variable", "var"),
    ("Literal.Number", "num"),
    ("Literal", "str"),
    ("Punctuation", "punct"),
)
"""Pygments token type (and its subtypes) -> the class the stylesheet colours (`hl-<class>`)."""


@dataclass(frozen=True)
class Line:
    number: int
    html: str
    """The line's highlighted content, escaped."""


def _category(token_type: Any) -> str | None:
    name = str(token_type).removeprefix("Token.")
    for prefix, category in CATEGORIES:
        if name == prefix or name.startswith(prefix + "."):
            return category
    return None


def _line_html(pieces: list[tuple[str | None, str]]) -> str:
    """One line's pieces (category, text) as spans; a `{{ }}` / `{% %}` on the line is marked `expr` whatever
    tokens it was split into; blanks get no span."""
    text = "".join(piece for _, piece in pieces)
    categories: list[str | None] = []
    for category, piece in pieces:
        categories += [None if piece.isspace() else category] * len(piece)
    for blank in re.finditer(r"\s+", text):  # a blank between two pieces of one kind is part of it
        before = categories[blank.start() - 1] if blank.start() else None
        if before is not None and blank.end() < len(text) and categories[blank.end()] == before:
            categories[blank.start() : blank.end()] = [before] * (blank.end() - blank.start())
    for match in EXPRESSION.finditer(text):
        categories[match.start() : match.end()] = ["expr"] * (match.end() - match.start())
    out, at = [], 0
    while at < len(text):
        end = at
        while end < len(text) and categories[end] == categories[at]:
            end += 1
        category, chunk = categories[at], escape(text[at:end])
        out.append(chunk if category is None else f'<span class="hl-{category}">{chunk}</span>')
        at = end
    return "".join(out)


def highlight_yaml(source: str) -> list[Line]:
    """One `Line` per line of `source` (a last line without a newline counts; an empty source has none)."""
    from pygments.lexers.data import YamlLexer

    lexer = YamlLexer(stripnl=False, stripall=False, ensurenl=True)
    lines: list[list[tuple[str | None, str]]] = [[]]
    for token_type, value in lexer.get_tokens(source):
        category = _category(token_type)
        for i, piece in enumerate(value.split("\n")):
            if i:
                lines.append([])
            if piece:
                lines[-1].append((category, piece))
    text = source.replace("\r\n", "\n").replace("\r", "\n")  # as Pygments reads it
    count = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    return [Line(n, _line_html(pieces)) for n, pieces in enumerate(lines[:count], start=1)]


def render_lines(lines: list[Line], dom_id: str = "source", label: str = "Source") -> str:
    """The lines as `<pre><code>`, each line a span anchored `L<n>`.

    The `<pre>` scrolls sideways when a line is longer than the screen, and holds nothing that takes the focus:
    it takes it itself (a region named `label`), so the keyboard can scroll it."""
    body = "".join(f'<span class="line" id="L{ln.number}" data-n="{ln.number}">{ln.html}\n</span>' for ln in lines)
    region = f'tabindex="0" role="region" aria-label="{escape(label)}"'
    return f'<pre class="source" id="{escape(dom_id)}" {region}><code>{body}</code></pre>'


def task_lines(source: str) -> dict[str, int]:
    """Task id -> the line (from 1) its mapping starts on: every mapping with a string `id` and a `type`. A
    source that is not YAML has none."""
    try:
        root = yaml.compose(source, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    found: dict[str, int] = {}
    seen: set[int] = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:  # an alias shares its node: visit it once
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
            ident = keys.get("id")
            if "type" in keys and isinstance(ident, yaml.ScalarNode) and ident.value not in found:
                found[ident.value] = node.start_mark.line + 1
            stack.extend(v for _, v in reversed(node.value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
    return found
