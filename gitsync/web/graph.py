"""The task graph of a flow, as plain data, and where each of its parts is drawn (pure: no I/O).

`build_graph(document)` reads the flow document as YAML gives it (a dict) into `Node`s: one per task, the
flowable ones holding their branches (`Branch`: a labelled list of nodes). A type is known by the last segment of
its name, in any case, so the legacy `io.kestra.core.tasks.flows.*` names draw as the new ones do. A document that
does not validate still draws: what cannot be read is left out, never raised.

`layout(graph)` places every part top to bottom, the same way for the same document: a sequence as a column, a
Sequential / WorkingDirectory / AllowFailure as a frame around its tasks, a loop as a frame with the values it
iterates over and an edge back, Parallel as a fork and a join, If and Switch as forks whose branches are labelled,
a Dag in rows by dependency depth with its `dependsOn` edges, and the flow's `errors`, `finally` and
`afterExecution` as lanes of their own beside `tasks`. `gitsync.web.svg` draws the result.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["task", "group", "parallel", "if", "switch", "loop", "dag", "subflow"]

KINDS: dict[str, Kind] = {
    "sequential": "group",
    "workingdirectory": "group",
    "allowfailure": "group",
    "parallel": "parallel",
    "if": "if",
    "switch": "switch",
    "foreach": "loop",
    "eachsequential": "loop",
    "eachparallel": "loop",
    "loopuntil": "loop",
    "dag": "dag",
    "subflow": "subflow",
    "flow": "subflow",  # io.kestra.core.tasks.flows.Flow, the legacy name of Subflow
    "foreachitem": "subflow",
}
"""The last segment of a type name, lower case -> how the task is drawn (anything else: a plain task)."""

LANES = (("tasks", "tasks"), ("errors", "errors"), ("finally", "finally"), ("afterExecution", "after execution"))
"""The flow's task lists, drawn side by side: document key, lane label."""

MAX_DEPTH = 64
"""Nesting read at most (a validated flow nests far less); deeper tasks are left out."""

NODE_W, NODE_H = 200.0, 48.0
GAP_X, GAP_Y = 24.0, 28.0
PAD, LABEL_H, LANE_GAP, MARGIN = 12.0, 18.0, 48.0, 16.0


@dataclass(frozen=True)
class Branch:
    label: str | None
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class Node:
    task_id: str
    type: str
    kind: Kind
    detail: str | None = None
    """What the task decides on: If's condition, Switch's value, a loop's values, a subflow's flow."""
    branches: tuple[Branch, ...] = ()
    handlers: tuple[Branch, ...] = ()
    """A flowable's own `errors` and `finally`."""
    depends_on: tuple[str, ...] = ()
    """Inside a Dag: the ids of the tasks this one waits for."""
    subflow: tuple[str, str] | None = None
    """(namespace, flow id) of a Subflow whose target is written out (not an expression)."""

    @property
    def short_type(self) -> str:
        return short_type(self.type)


@dataclass(frozen=True)
class Graph:
    lanes: tuple[Branch, ...]

    def nodes(self) -> Iterable[Node]:
        """Every node, depth first, in document order."""
        stack = [n for lane in reversed(self.lanes) for n in reversed(lane.nodes)]
        while stack:
            node = stack.pop()
            yield node
            for branch in reversed((*node.branches, *node.handlers)):
                stack.extend(reversed(branch.nodes))


def short_type(type_name: str) -> str:
    return type_name.rsplit(".", 1)[-1]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return str(value)


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def build_graph(document: Mapping[str, Any]) -> Graph:
    """The graph of a flow document (the dict YAML gives); lanes without tasks are left out, `tasks` never."""
    lanes = []
    for key, label in LANES:
        nodes = _nodes(document.get(key), 0)
        if nodes or key == "tasks":
            lanes.append(Branch(label, nodes))
    return Graph(tuple(lanes))


def _nodes(items: Any, depth: int) -> tuple[Node, ...]:
    if not isinstance(items, list) or depth > MAX_DEPTH:
        return ()
    return tuple(node for item in items if isinstance(item, Mapping) and (node := _node(item, depth)) is not None)


def _node(raw: Mapping[str, Any], depth: int, depends_on: tuple[str, ...] = ()) -> Node | None:
    task_id, type_name = raw.get("id"), raw.get("type")
    if not isinstance(task_id, str) or not task_id:
        return None
    type_name = type_name if isinstance(type_name, str) and type_name else "(no type)"
    kind = KINDS.get(short_type(type_name).lower())
    if kind is None:
        kind = "group" if _nodes(raw.get("tasks"), depth + 1) else "task"
    inner = depth + 1
    handlers = tuple(
        Branch(label, nodes) for key, label in (("errors", "errors"), ("finally", "finally"))
        if (nodes := _nodes(raw.get(key), inner))
    )  # fmt: skip
    detail, branches, subflow = _parts(kind, raw, inner)
    return Node(task_id, type_name, kind, detail, branches, handlers if kind != "task" else (), depends_on, subflow)


def _parts(kind: Kind, raw: Mapping[str, Any], depth: int) -> tuple[str | None, tuple[Branch, ...], Any]:
    """(detail, branches, subflow target) of a task of that kind."""
    if kind in ("group", "loop"):
        detail = None
        if kind == "loop":
            name = short_type(str(raw.get("type"))).lower()
            if name == "loopuntil":
                detail = f"until {_text(raw.get('condition'))}"
            else:
                values = raw.get("values") if name == "foreach" else raw.get("value", raw.get("values"))
                detail = f"for each of {_text(values)}"
        return detail, (Branch(None, _nodes(raw.get("tasks"), depth)),), None
    if kind == "parallel":
        return None, tuple(Branch(None, (n,)) for n in _nodes(raw.get("tasks"), depth)), None
    if kind == "if":
        branches = [Branch("then", _nodes(raw.get("then"), depth))]
        if otherwise := _nodes(raw.get("else"), depth):
            branches.append(Branch("else", otherwise))
        return f"if {_text(raw.get('condition'))}", tuple(branches), None
    if kind == "switch":
        cases = raw.get("cases")
        cases = cases if isinstance(cases, Mapping) else {}
        branches = [Branch(f"case {_case_key(key)}", _nodes(tasks, depth)) for key, tasks in cases.items()]
        if defaults := _nodes(raw.get("defaults"), depth):
            branches.append(Branch("defaults", defaults))
        return f"switch on {_text(raw.get('value'))}", tuple(branches), None
    if kind == "dag":
        nodes = []
        items = raw.get("tasks")
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, Mapping) or not isinstance(item.get("task"), Mapping):
                continue
            deps = item.get("dependsOn")
            deps = tuple(d for d in deps if isinstance(d, str)) if isinstance(deps, list) else ()
            if (node := _node(item["task"], depth, deps)) is not None:
                nodes.append(node)
        return None, (Branch(None, tuple(nodes)),), None
    if kind == "subflow":
        namespace, flow_id = raw.get("namespace"), raw.get("flowId")
        if not isinstance(namespace, str) or not isinstance(flow_id, str):
            return None, (), None
        target = (namespace, flow_id) if not _is_template(namespace + flow_id) else None
        return f"runs {namespace}.{flow_id}", (), target
    return None, (), None


def _case_key(key: Any) -> str:
    return str(key).lower() if isinstance(key, bool) else str(key)


# -- layout ---------------------------------------------------------------------------------------------------

Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    """A task's box (a flowable's is the head of its frame)."""

    node: Node
    x: float
    y: float
    w: float = NODE_W
    h: float = NODE_H


@dataclass(frozen=True)
class Frame:
    kind: str
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Edge:
    points: tuple[Point, ...]
    kind: str = "flow"
    """flow | dependency (a Dag's dependsOn) | loop (a loop's way back) | join (branches meeting: no arrow)"""


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    kind: str = "branch"
    """branch | lane | detail"""


@dataclass
class Block:
    """Parts placed relative to the block's top left; entered at its top centre, left at its bottom centre."""

    w: float
    h: float
    boxes: list[Box] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    joins: list[Point] = field(default_factory=list)

    def place(self, other: Block, dx: float, dy: float) -> None:
        self.boxes += [Box(b.node, b.x + dx, b.y + dy, b.w, b.h) for b in other.boxes]
        self.frames += [Frame(f.kind, f.x + dx, f.y + dy, f.w, f.h) for f in other.frames]
        self.edges += [Edge(tuple((x + dx, y + dy) for x, y in e.points), e.kind) for e in other.edges]
        self.labels += [Label(lb.x + dx, lb.y + dy, lb.text, lb.kind) for lb in other.labels]
        self.joins += [(x + dx, y + dy) for x, y in other.joins]


def _label_width(text: str) -> float:
    return 7.0 * len(text) + 12.0


def layout(graph: Graph) -> Block:
    """Every part of the graph placed; the block's size is the drawing's."""
    out = Block(0.0, 0.0)
    x = MARGIN
    for lane in graph.lanes:
        column = _sequence(lane.nodes)
        width = max(column.w, NODE_W, _label_width(lane.label or ""))
        out.labels.append(Label(x, MARGIN + LABEL_H - 5, lane.label or "", "lane"))
        out.place(column, x + (width - column.w) / 2, MARGIN + LABEL_H + 8)
        out.h = max(out.h, MARGIN + LABEL_H + 8 + column.h + MARGIN)
        x += width + LANE_GAP
    out.w = x - LANE_GAP + MARGIN
    return out


def _sequence(nodes: Sequence[Node]) -> Block:
    blocks = [_block(n) for n in nodes]
    out = Block(max((b.w for b in blocks), default=NODE_W), 0.0)
    y = 0.0
    for i, block in enumerate(blocks):
        if i:
            out.edges.append(Edge(((out.w / 2, y - GAP_Y), (out.w / 2, y))))
        out.place(block, (out.w - block.w) / 2, y)
        y += block.h + GAP_Y
    out.h = max(y - GAP_Y, 0.0)
    return out


def _block(node: Node) -> Block:
    if node.kind in ("task", "subflow"):
        return Block(NODE_W, NODE_H, boxes=[Box(node, 0.0, 0.0)])
    if node.kind in ("parallel", "if", "switch"):
        return _fork(node)
    if node.kind == "dag":
        return _dag(node)
    return _group(node)


def _framed(node: Node, body: Block, body_top: float, handlers: list[tuple[str, Block]], width: float) -> Block:
    """`node`'s frame: its box at the top, `body` (already sized) below at `body_top`, then its handler lanes."""
    handlers_w = sum(b.w for _, b in handlers) + GAP_X * max(len(handlers) - 1, 0)
    inner = max(NODE_W, width, handlers_w)
    out = Block(inner + 2 * PAD, 0.0)
    out.boxes.append(Box(node, (out.w - NODE_W) / 2, PAD))
    out.place(body, PAD + (inner - body.w) / 2, body_top)
    y = body_top + body.h
    if handlers:
        y += GAP_Y
        x = PAD + (inner - handlers_w) / 2
        tallest = 0.0
        for label, block in handlers:
            out.labels.append(Label(x, y + LABEL_H - 5, label, "branch"))
            out.place(block, x, y + LABEL_H)
            out.frames.append(Frame("handler", x - 4, y + LABEL_H - 4, block.w + 8, block.h + 8))
            tallest = max(tallest, block.h)
            x += block.w + GAP_X
        y += LABEL_H + tallest + 4
    out.h = y + PAD
    out.frames.insert(0, Frame(node.kind, 0.0, 0.0, out.w, out.h))
    return out


def _handlers(node: Node) -> list[tuple[str, Block]]:
    return [(h.label or "", _sequence(h.nodes)) for h in node.handlers]


def _group(node: Node) -> Block:
    body = _sequence(node.branches[0].nodes if node.branches else ())
    top = PAD + NODE_H
    if node.detail:
        top += LABEL_H
    out = _framed(node, body, top + GAP_Y, _handlers(node), body.w)
    centre = out.w / 2
    if node.detail:
        out.labels.append(Label(centre, PAD + NODE_H + LABEL_H - 4, node.detail, "detail"))
    if body.boxes:
        out.edges.append(Edge(((centre, top), (centre, top + GAP_Y))))
        if node.kind == "loop":  # from the end of the body back to the head
            bottom, right, head = top + GAP_Y + body.h, out.w - PAD / 2, PAD + NODE_H / 2
            out.edges.append(Edge(((centre, bottom), (centre, bottom + 8), (right, bottom + 8), (right, head),
                                   (centre + NODE_W / 2, head)), "loop"))  # fmt: skip
    return out


def _fork(node: Node) -> Block:
    columns = [(b.label, _sequence(b.nodes)) for b in node.branches]
    widths = [max(block.w, _label_width(label) if label else 0.0) for label, block in columns]
    total = sum(widths) + GAP_X * max(len(columns) - 1, 0)
    labelled = any(label for label, _ in columns)
    head = PAD + NODE_H + (LABEL_H if node.detail else 0.0)
    fork_y = head + GAP_Y / 2
    top = head + GAP_Y + (LABEL_H if labelled else 0.0)
    tallest = max((block.h for _, block in columns), default=0.0)
    body = Block(total, tallest + GAP_Y)
    join_y = tallest + GAP_Y / 2
    x = 0.0
    centres = []
    for (label, block), width in zip(columns, widths, strict=True):
        cx = x + width / 2
        centres.append(cx)
        body.place(block, cx - block.w / 2, 0.0)
        if label:
            body.labels.append(Label(cx + 4, -5, label, "branch"))
        body.edges.append(Edge(((cx, block.h if block.boxes else 0.0), (cx, join_y)), "join"))
        x += width + GAP_X
    out = _framed(node, body, top, _handlers(node), total)
    offset = (out.w - total) / 2
    centre = out.w / 2
    if node.detail:
        out.labels.append(Label(centre, PAD + NODE_H + LABEL_H - 4, node.detail, "detail"))
    if columns:
        out.edges.append(Edge(((centre, PAD + NODE_H), (centre, fork_y))))
        for cx in centres:
            out.edges.append(Edge(((centre, fork_y), (offset + cx, fork_y), (offset + cx, top))))
        join = top + join_y
        out.edges.append(Edge(((offset + centres[0], join), (offset + centres[-1], join)), "join"))
        out.joins.append((centre, join))
    return out


def dag_depths(nodes: Sequence[Node]) -> dict[str, int]:
    """Each task's row in a Dag: 0 without a known dependency, else one below its deepest one (a cycle, which
    validation refuses, is cut where it closes)."""
    by_id = {n.task_id: n for n in nodes}
    depths: dict[str, int] = {}

    def depth(task_id: str, seen: frozenset[str]) -> int:
        if task_id in depths:
            return depths[task_id]
        deps = [d for d in by_id[task_id].depends_on if d in by_id and d not in seen]
        value = 1 + max((depth(d, seen | {d}) for d in deps), default=-1)
        depths[task_id] = value
        return value

    for node in nodes:
        depth(node.task_id, frozenset({node.task_id}))
    return depths


def _dag(node: Node) -> Block:
    nodes = node.branches[0].nodes if node.branches else ()
    depths = dag_depths(nodes)
    rows: dict[int, list[tuple[Node, Block]]] = {}
    for n in nodes:
        rows.setdefault(depths[n.task_id], []).append((n, _block(n)))
    row_w = {d: sum(b.w for _, b in row) + GAP_X * (len(row) - 1) for d, row in rows.items()}
    width = max(row_w.values(), default=0.0)
    body = Block(width, 0.0)
    tops: dict[str, Point] = {}
    bottoms: dict[str, Point] = {}
    y = 0.0
    for d in sorted(rows):
        x = (width - row_w[d]) / 2
        for n, block in rows[d]:
            body.place(block, x, y)
            tops[n.task_id] = (x + block.w / 2, y)
            bottoms[n.task_id] = (x + block.w / 2, y + block.h)
            x += block.w + GAP_X
        y += max(b.h for _, b in rows[d]) + GAP_Y * 1.5
    body.h = max(y - GAP_Y * 1.5, 0.0)
    for n in nodes:
        tx, ty = tops[n.task_id]
        for dep in dict.fromkeys(d for d in n.depends_on if d in bottoms):
            bx, by = bottoms[dep]
            body.edges.append(Edge(((bx, by), (bx, by + GAP_Y / 2), (tx, ty - GAP_Y / 2), (tx, ty)), "dependency"))
    top = PAD + NODE_H + GAP_Y
    out = _framed(node, body, top, _handlers(node), width)
    offset = (out.w - width) / 2
    centre = out.w / 2
    for n in nodes:
        if not any(d in tops for d in n.depends_on):
            tx, ty = tops[n.task_id]
            out.edges.append(Edge(((centre, PAD + NODE_H), (centre, top - GAP_Y / 2), (offset + tx, top - GAP_Y / 2),
                                   (offset + tx, top))))  # fmt: skip
    return out
