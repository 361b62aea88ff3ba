"""The task graph drawn as inline SVG (pure): every task a link with an accessible name, its state as a class.

Nothing is styled inline (the pages' Content-Security-Policy allows no inline style): colours come from
`static/app.css` through the classes (`node`, `kind-<kind>`, `state-<state>`, `frame-<kind>`, `edge-<kind>`), and
the shapes carry presentation attributes only. Every text from the document is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from html import escape
from urllib.parse import quote

from gitsync.web.graph import NODE_H, NODE_W, Block, Box, Graph, Node, layout
from gitsync.web.states import state_class

Href = Callable[[Node], str]

CHARS_PER_LINE = 26
"""What fits on one line of a box (13 px text in a 200 px box); the rest is cut with an ellipsis."""


def flow_href(namespace: str, flow_id: str) -> str:
    return f"/flows/{quote(namespace, safe='')}/{quote(flow_id, safe='')}"


def default_href(node: Node) -> str:
    """A Subflow links to the flow it runs; any other task to its row on the page (`#task-<id>`)."""
    if node.subflow is not None:
        return flow_href(*node.subflow)
    return f"#task-{quote(node.task_id, safe='')}"


def _cut(text: str, width: int = CHARS_PER_LINE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def accessible_name(node: Node, state: str | None = None) -> str:
    """What a screen reader says of a node: its id, its type, and its state when there is one."""
    name = f"{node.task_id} ({node.short_type})"
    return f"{name}, {state}" if state else name


def render_svg(
    graph: Graph,
    title: str,
    *,
    states: Mapping[str, str] | None = None,
    href: Href = default_href,
    dom_id: str = "graph",
) -> str:
    """The graph as an `<svg>` element. `states`: task id -> state (an execution's), shown as text and colour."""
    drawing = layout(graph)
    states = states or {}
    w, h = max(drawing.w, 1.0), max(drawing.h, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{dom_id}" class="graph" role="group" '
        f'aria-labelledby="{dom_id}-title" width="{_n(w)}" height="{_n(h)}" viewBox="0 0 {_n(w)} {_n(h)}">',
        f'<title id="{dom_id}-title">{escape(title)}</title>',
        f'<defs><marker id="{dom_id}-arrow" class="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z"/></marker></defs>',
    ]
    parts += _shapes(drawing, dom_id)
    seen: set[str] = set()
    for box in drawing.boxes:
        parts.append(_box(box, states.get(box.node.task_id), href(box.node), _unique(dom_id, box.node, seen)))
    if not drawing.boxes:
        parts.append('<text class="empty" x="16" y="60">This flow has no tasks.</text>')
    parts.append("</svg>")
    return "".join(parts)


def _unique(dom_id: str, node: Node, seen: set[str]) -> str:
    base = f"{dom_id}-node-{re.sub(r'[^A-Za-z0-9_-]', '_', node.task_id)}"
    ident, n = base, 1
    while ident in seen:
        n += 1
        ident = f"{base}-{n}"
    seen.add(ident)
    return ident


def _shapes(drawing: Block, dom_id: str) -> list[str]:
    parts = [
        f'<rect class="frame frame-{f.kind}" x="{_n(f.x)}" y="{_n(f.y)}" width="{_n(f.w)}" height="{_n(f.h)}" '
        'rx="8" fill="none"/>'
        for f in drawing.frames
    ]
    for edge in drawing.edges:
        points = " ".join(f"{_n(x)},{_n(y)}" for x, y in edge.points)
        arrow = "" if edge.kind == "join" else f' marker-end="url(#{dom_id}-arrow)"'
        parts.append(f'<polyline class="edge edge-{edge.kind}" points="{points}" fill="none"{arrow}/>')
    parts += [f'<circle class="join" cx="{_n(x)}" cy="{_n(y)}" r="4"/>' for x, y in drawing.joins]
    for label in drawing.labels:
        anchor = ' text-anchor="middle"' if label.kind == "detail" else ""
        width = 40 if label.kind == "detail" else CHARS_PER_LINE
        parts.append(
            f'<text class="label label-{label.kind}" x="{_n(label.x)}" y="{_n(label.y)}"{anchor}>'
            f"{escape(_cut(label.text, width))}</text>"
        )
    return parts


def _box(box: Box, state: str | None, href: str, ident: str) -> str:
    node = box.node
    classes = f"node kind-{node.kind}" + (f" {state_class(state)}" if state else "")
    second = node.short_type + (f" \u00b7 {state}" if state else "")
    full = f"{node.task_id}: {node.type}" + (f" ({state})" if state else "")
    if node.detail and node.kind == "subflow":
        full += f", {node.detail}"
    cx = box.x + NODE_W / 2
    return (
        f'<a id="{ident}" class="{classes}" href="{escape(href)}" aria-label="{escape(accessible_name(node, state))}">'
        f"<title>{escape(full)}</title>"
        f'<rect x="{_n(box.x)}" y="{_n(box.y)}" width="{_n(box.w)}" height="{_n(box.h)}" rx="6"/>'
        f'<text class="node-id" x="{_n(cx)}" y="{_n(box.y + 20)}" text-anchor="middle">{escape(_cut(node.task_id))}'
        f'</text><text class="node-type" x="{_n(cx)}" y="{_n(box.y + NODE_H - 12)}" text-anchor="middle">'
        f"{escape(_cut(second, CHARS_PER_LINE + 4))}</text></a>"
    )
