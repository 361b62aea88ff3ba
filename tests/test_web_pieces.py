"""The web UI's pure pieces: the task graph (its model, layout and SVG), the Gantt rows, the highlighted source,
the revision diff, and the stylesheet's colours (WCAG AA contrast in both themes)."""

from __future__ import annotations

import difflib
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from gitsync.web.diff import counts, diff_rows, parse_unified
from gitsync.web.graph import NODE_W, PAD, Graph, build_graph, dag_depths, layout
from gitsync.web.highlight import highlight_yaml, render_lines, task_lines
from gitsync.web.svg import render_svg
from gitsync.web.timeline import build_timeline, format_duration

STATIC = Path(__file__).resolve().parents[1] / "gitsync" / "web" / "static"
SVG = "{http://www.w3.org/2000/svg}"

FLOW = """\
id: demo
namespace: acme
tasks:
  - id: start
    type: io.kestra.plugin.core.log.Log
    message: hi
  - id: fan
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: left
        type: io.kestra.plugin.core.log.Log
        message: l
      - id: right
        type: io.kestra.core.tasks.flows.Sequential
        tasks:
          - id: r1
            type: io.kestra.plugin.core.debug.Return
            format: a
          - id: r2
            type: io.kestra.plugin.core.debug.Return
            format: b
  - id: check
    type: io.kestra.core.tasks.flows.If
    condition: "{{ inputs.go }}"
    then:
      - id: when_true
        type: io.kestra.plugin.core.log.Log
        message: t
    else:
      - id: when_false
        type: io.kestra.plugin.core.log.Log
        message: f
  - id: route
    type: io.kestra.plugin.core.flow.Switch
    value: "{{ inputs.env }}"
    cases:
      dev:
        - id: on_dev
          type: io.kestra.plugin.core.log.Log
          message: d
    defaults:
      - id: elsewhere
        type: io.kestra.plugin.core.log.Log
        message: o
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["x", "y"]
    tasks:
      - id: inside
        type: io.kestra.plugin.core.log.Log
        message: "{{ taskrun.value }}"
  - id: graph
    type: io.kestra.plugin.core.flow.Dag
    tasks:
      - task: {id: extract, type: io.kestra.plugin.core.log.Log, message: e}
      - task: {id: clean, type: io.kestra.plugin.core.log.Log, message: c}
        dependsOn: [extract]
      - task: {id: enrich, type: io.kestra.plugin.core.log.Log, message: n}
        dependsOn: [extract]
      - task: {id: load, type: io.kestra.plugin.core.log.Log, message: l}
        dependsOn: [clean, enrich]
  - id: child
    type: io.kestra.core.tasks.flows.Flow
    namespace: acme.other
    flowId: downstream
errors:
  - id: alert
    type: io.kestra.plugin.core.log.Log
    message: failed
finally:
  - id: cleanup
    type: io.kestra.plugin.core.log.Log
    message: done
"""


def graph_of(text: str) -> Graph:
    return build_graph(yaml.safe_load(text))


def by_id(graph: Graph) -> dict[str, object]:
    return {node.task_id: node for node in graph.nodes()}


# -- the graph's model --------------------------------------------------------------------------------------------


def test_each_flowable_is_read_as_what_it_is_legacy_names_included() -> None:
    graph = graph_of(FLOW)
    nodes = {node.task_id: node for node in graph.nodes()}
    assert [lane.label for lane in graph.lanes] == ["tasks", "errors", "finally"]
    assert {
        name: nodes[name].kind for name in ("start", "fan", "right", "check", "route", "each", "graph", "child")
    } == {
        "start": "task",
        "fan": "parallel",
        "right": "group",
        "check": "if",
        "route": "switch",
        "each": "loop",
        "graph": "dag",
        "child": "subflow",
    }
    assert [(b.label, [n.task_id for n in b.nodes]) for b in nodes["check"].branches] == [
        ("then", ["when_true"]),
        ("else", ["when_false"]),
    ]
    assert [b.label for b in nodes["route"].branches] == ["case dev", "defaults"]
    assert [[n.task_id for n in b.nodes] for b in nodes["fan"].branches] == [["left"], ["right"]]
    assert nodes["each"].detail == 'for each of ["x","y"]'
    assert nodes["check"].detail == "if {{ inputs.go }}"
    assert nodes["child"].subflow == ("acme.other", "downstream")
    assert nodes["load"].depends_on == ("clean", "enrich")
    assert list(nodes) == [
        "start", "fan", "left", "right", "r1", "r2", "check", "when_true", "when_false", "route", "on_dev",
        "elsewhere", "each", "inside", "graph", "extract", "clean", "enrich", "load", "child", "alert", "cleanup",
    ]  # fmt: skip


def test_types_are_known_by_their_last_segment_in_any_case() -> None:
    graph = graph_of(
        "id: f\nnamespace: n\ntasks:\n"
        "  - {id: p, type: IO.KESTRA.PLUGIN.CORE.FLOW.PARALLEL, tasks: [{id: a, type: x.Log}]}\n"
        "  - {id: e, type: io.kestra.core.tasks.flows.EachSequential, value: '[1,2]', tasks: [{id: b, type: x.Log}]}\n"
        "  - {id: u, type: io.kestra.plugin.core.flow.LoopUntil, condition: '{{ done }}',"
        " tasks: [{id: c, type: x.Log}]}"
    )
    nodes = by_id(graph)
    assert [nodes[k].kind for k in ("p", "e", "u")] == ["parallel", "loop", "loop"]  # type: ignore[attr-defined]
    assert nodes["e"].detail == "for each of [1,2]"  # type: ignore[attr-defined]
    assert nodes["u"].detail == "until {{ done }}"  # type: ignore[attr-defined]


def test_a_document_that_does_not_validate_still_draws_what_it_can() -> None:
    graph = build_graph({"tasks": [None, {"type": "x.Log"}, {"id": "ok", "type": 3}, "text"], "errors": "nope"})
    assert [(n.task_id, n.type) for n in graph.nodes()] == [("ok", "(no type)")]
    assert build_graph({}).lanes[0].label == "tasks"


def test_a_subflow_whose_target_is_an_expression_links_nowhere() -> None:
    graph = graph_of(
        "id: f\nnamespace: n\ntasks:\n  - {id: s, type: io.kestra.plugin.core.flow.Subflow, namespace: n, "
        "flowId: '{{ inputs.target }}'}"
    )
    node = next(iter(graph.nodes()))
    assert node.subflow is None and node.detail == "runs n.{{ inputs.target }}"


def test_dag_rows_follow_dependency_depth_and_a_cycle_is_cut() -> None:
    nodes = by_id(graph_of(FLOW))["graph"].branches[0].nodes  # type: ignore[attr-defined]
    assert dag_depths(nodes) == {"extract": 0, "clean": 1, "enrich": 1, "load": 2}
    cyclic = graph_of(
        "id: f\nnamespace: n\ntasks:\n  - id: d\n    type: io.kestra.plugin.core.flow.Dag\n    tasks:\n"
        "      - {task: {id: a, type: x.Log}, dependsOn: [b]}\n      - {task: {id: b, type: x.Log}, dependsOn: [a]}"
    )
    depths = dag_depths(next(iter(cyclic.nodes())).branches[0].nodes)
    assert set(depths) == {"a", "b"} and sorted(depths.values()) == [0, 1]


# -- layout and SVG -----------------------------------------------------------------------------------------------


def test_the_layout_is_the_same_for_the_same_document_and_nothing_overlaps() -> None:
    first, second = layout(graph_of(FLOW)), layout(graph_of(FLOW))
    assert first.boxes == second.boxes and first.edges == second.edges and first.frames == second.frames
    boxes = first.boxes
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y
            assert apart, f"{a.node.task_id} overlaps {b.node.task_id}"
        assert a.x >= 0 and a.x + a.w <= first.w and a.y >= 0 and a.y + a.h <= first.h
    where = {b.node.task_id: b for b in boxes}
    # Parallel: side by side (a frame's head sits PAD inside it)
    assert where["left"].y == where["right"].y - PAD and where["left"].x + NODE_W < where["right"].x
    assert where["when_true"].y == where["when_false"].y
    assert where["extract"].y < where["clean"].y == where["enrich"].y < where["load"].y  # Dag: rows by depth
    assert where["start"].y < where["fan"].y < where["r2"].y < where["check"].y  # tasks: top to bottom
    assert where["alert"].x > where["fan"].x + where["fan"].w  # errors: a lane beside tasks


def test_dag_edges_go_from_each_dependency_to_its_dependent() -> None:
    drawing = layout(graph_of(FLOW))
    where = {b.node.task_id: b for b in drawing.boxes}
    deps = [(e.points[0], e.points[-1]) for e in drawing.edges if e.kind == "dependency"]

    def bottom(name: str) -> tuple[float, float]:
        return (where[name].x + where[name].w / 2, where[name].y + where[name].h)

    def top(name: str) -> tuple[float, float]:
        return (where[name].x + where[name].w / 2, where[name].y)

    assert sorted(deps) == sorted(
        [(bottom("extract"), top("clean")), (bottom("extract"), top("enrich")), (bottom("clean"), top("load")),
         (bottom("enrich"), top("load"))]
    )  # fmt: skip


def test_the_svg_has_a_focusable_named_link_per_task_and_escapes_the_document() -> None:
    text = FLOW.replace("id: start", "id: '<b>start&</b>'")
    svg = render_svg(graph_of(text), "Task graph of acme.demo", states={"<b>start&</b>": "FAILED", "left": "SUCCESS"})
    root = ET.fromstring(svg)  # well-formed XML: every text escaped
    assert root.get("role") == "group" and root.get("aria-labelledby") == "graph-title"
    assert root.find(f"{SVG}title").text == "Task graph of acme.demo"  # type: ignore[union-attr]
    links = root.findall(f".//{SVG}a")
    names = {a.get("aria-label") for a in links}
    assert "<b>start&</b> (Log), FAILED" in names
    assert "left (Log), SUCCESS" in names and "fan (Parallel)" in names and "child (Flow)" in names
    assert len(links) == len(list(graph_of(text).nodes()))
    assert all(a.get("href") for a in links)
    hrefs = {a.get("aria-label"): a.get("href") for a in links}
    assert hrefs["child (Flow)"] == "/flows/acme.other/downstream"
    assert hrefs["left (Log), SUCCESS"] == "#task-left"
    classes = {a.get("aria-label"): a.get("class") for a in links}
    assert classes["left (Log), SUCCESS"] == "node kind-task state-success"
    assert "<b>" not in svg and "&lt;b&gt;start&amp;&lt;/b&gt;" in svg
    assert "style=" not in svg  # the pages' CSP allows no inline style


def test_a_flow_without_tasks_says_so() -> None:
    svg = render_svg(build_graph({"id": "f"}), "Task graph")
    assert "This flow has no tasks." in svg


# -- timeline -----------------------------------------------------------------------------------------------------


def run(ident: str, task: str, start: str | None, end: str | None, parent: str | None = None, **kw: object) -> dict:
    return {"id": ident, "task_id": task, "parent_id": parent, "attempt": kw.get("attempt", 1),
            "state": kw.get("state", "SUCCESS"), "started_at": start, "ended_at": end}  # fmt: skip


def test_gantt_rows_nest_children_under_their_parent_in_start_order() -> None:
    runs = [
        run("c2", "second", "2024-05-01T10:00:06+00:00", "2024-05-01T10:00:08+00:00", parent="p"),
        run("p", "group", "2024-05-01T10:00:00+00:00", "2024-05-01T10:00:10+00:00"),
        run("c1", "first", "2024-05-01T10:00:01+00:00", "2024-05-01T10:00:06+00:00", parent="p"),
        run("n", "never", None, None, state="CREATED"),
    ]
    timeline = build_timeline(runs, datetime(2024, 5, 1, 10, 1, tzinfo=UTC))
    assert [(r.task_id, r.depth, r.left, r.width, r.duration) for r in timeline.rows] == [
        ("group", 0, 0.0, 100.0, "10.0 s"),
        ("first", 1, 10.0, 50.0, "5.0 s"),
        ("second", 1, 60.0, 20.0, "2.0 s"),
        ("never", 0, None, None, ""),
    ]
    assert timeline.span == "10.0 s"


def test_a_running_task_reaches_to_now() -> None:
    runs = [
        run("a", "done", "2024-05-01T10:00:00Z", "2024-05-01T10:00:30Z"),
        run("b", "busy", "2024-05-01T10:00:30Z", None, state="RUNNING", attempt=2),
    ]
    timeline = build_timeline(runs, datetime(2024, 5, 1, 10, 1, tzinfo=UTC))
    busy = timeline.rows[1]
    assert (busy.running, busy.left, busy.width, busy.duration, busy.attempt) == (True, 50.0, 50.0, "30.0 s", 2)
    assert timeline.span == "1 min 00 s"


def test_a_very_short_run_still_shows_and_never_leaves_the_span() -> None:
    runs = [
        run("a", "long", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"),
        run("b", "blink", "2024-05-01T11:00:00Z", "2024-05-01T11:00:00.001Z"),
    ]
    blink = build_timeline(runs, datetime(2024, 5, 1, 12, tzinfo=UTC)).rows[1]
    assert blink.width is not None and blink.left is not None
    assert blink.width > 0 and blink.left + blink.width <= 100.0
    assert blink.duration == "1 ms"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.35, "350 ms"), (12.34, "12.3 s"), (245, "4 min 05 s"), (7380, "2 h 03 min"), (273600, "3 d 04 h")],
)
def test_durations_read_as_words(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# -- highlighted source -------------------------------------------------------------------------------------------


def test_every_line_is_anchored_highlighted_and_escaped() -> None:
    source = 'id: x\n# a <comment>\nmessage: "{{ inputs.name }} & <b>"\nn: 3'
    lines = highlight_yaml(source)
    assert [ln.number for ln in lines] == [1, 2, 3, 4]
    assert (
        lines[0].html == '<span class="hl-key">id</span><span class="hl-punct">:</span> <span class="hl-str">x</span>'
    )
    assert lines[1].html == '<span class="hl-c"># a &lt;comment&gt;</span>'
    assert '<span class="hl-expr">{{ inputs.name }}</span>' in lines[2].html and "&amp; &lt;b&gt;" in lines[2].html
    html = render_lines(lines)
    assert html.count('class="line"') == 4 and 'id="L3" data-n="3"' in html
    assert html.startswith('<pre class="source" id="source" tabindex="0" role="region" aria-label="Source">')
    text = re.sub(r"<[^>]+>", "", html)  # what the reader sees, unescaped, is the source
    assert text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("&quot;", '"') == source + "\n"


def test_the_line_of_each_task_is_found() -> None:
    lines = task_lines(FLOW)
    source = FLOW.splitlines()
    assert source[lines["start"] - 1] == "  - id: start"
    assert source[lines["r1"] - 1] == "          - id: r1"
    assert source[lines["clean"] - 1].strip().startswith("- task: {id: clean")
    assert task_lines("tasks: [") == {}


def test_highlight_does_not_import_pygments_until_asked() -> None:
    import subprocess
    import sys

    code = "import sys, gitsync.web.highlight, gitsync.web.svg, gitsync.web.timeline, gitsync.web.diff; " \
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pygments', 'jinja2')))"  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[]"


# -- diff ---------------------------------------------------------------------------------------------------------


def test_diff_rows_number_both_sides_and_match_difflib() -> None:
    old = "".join(f"line {i}\n" for i in range(1, 21))
    new = old.replace("line 5\n", "line five\n").replace("line 18\n", "").replace("line 20\n", "line 20\n<b>&</b>\n")
    rows = diff_rows(old, new)
    headers = [r.text for r in rows if r.kind == "hunk"]
    assert headers == [line.strip() for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="")
                       if line.startswith("@@")]  # fmt: skip
    changed = [(r.kind, r.old, r.new, r.text) for r in rows if r.kind in ("add", "del")]
    assert changed == [
        ("del", 5, None, "line 5"),
        ("add", None, 5, "line five"),
        ("del", 18, None, "line 18"),
        ("add", None, 20, "<b>&</b>"),
    ]
    assert [(r.old, r.new) for r in rows if r.kind == "ctx"][:3] == [(2, 2), (3, 3), (4, 4)]
    assert rows[-1].html == "&lt;b&gt;&amp;&lt;/b&gt;"
    assert counts(rows) == (2, 2)
    assert diff_rows(old, old) == []


# -- the stylesheet -----------------------------------------------------------------------------------------------

DECLARATION = re.compile(r"--([a-z0-9-]+):\s*light-dark\(\s*(#[0-9a-fA-F]{6})\s*,\s*(#[0-9a-fA-F]{6})\s*\)\s*;")


def palettes() -> dict[str, dict[str, str]]:
    css = (STATIC / "app.css").read_text()
    block = re.search(r":root\s*\{(.*?)\n\}", css, re.S)
    assert block, "app.css declares its colours in one :root block"
    found = DECLARATION.findall(block.group(1))
    return {"light": {n: light for n, light, _ in found}, "dark": {n: dark for n, _, dark in found}}


def luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def backgrounds(name: str, palette: dict[str, str]) -> list[str]:
    """A `-fg` colour's background: the longest prefix's `-bg`, else the page and the surfaces."""
    parts = name.removesuffix("-fg").split("-")
    for n in range(len(parts), 0, -1):
        candidate = "-".join(parts[:n]) + "-bg"
        if candidate in palette:
            return [candidate]
    return ["bg", "surface-bg"]


def pairs() -> list[tuple[str, str, str, float]]:
    out = []
    for theme, palette in palettes().items():
        for name in palette:
            if name.endswith("-fg") or name == "fg":
                out += [(theme, name, bg, 4.5) for bg in (backgrounds(name, palette) if name != "fg" else ["bg"])]
            elif name.endswith("-line"):
                out += [(theme, name, bg, 3.0) for bg in ("bg", "surface-bg")]
    return out


@pytest.mark.parametrize(("theme", "fg", "bg", "needed"), pairs())
def test_each_declared_colour_pair_meets_wcag_aa(theme: str, fg: str, bg: str, needed: float) -> None:
    palette = palettes()[theme]
    ratio = contrast(palette[fg], palette[bg])
    assert ratio >= needed, f"{theme}: --{fg} {palette[fg]} on --{bg} {palette[bg]} is {ratio:.2f}:1, needs {needed}:1"


def test_the_contrast_check_is_sound_and_covers_every_state() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic just-failing grey
    names = {fg for _, fg, _, _ in pairs()}
    from gitsync.web.states import FAMILY_NAMES

    assert {f"state-{family}-fg" for family in FAMILY_NAMES} <= names
    assert {"fg", "muted-fg", "link-fg", "code-key-fg", "diff-add-fg", "focus-line"} <= names


def test_every_colour_the_stylesheet_uses_is_declared() -> None:
    css = (STATIC / "app.css").read_text()
    declared = set(palettes()["light"])
    used = set(re.findall(r"var\(--([a-z0-9-]+)\)", css))
    assert used - declared == set()
    assert set(re.findall(r"^\s*--([a-z0-9-]+):", css, re.M)) == declared  # each one in both themes


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("".join(f"l{i}\n" for i in range(30)), "".join(f"l{i}\n" for i in range(30) if i % 7) + "end\n"),
        ("", "a\nb\n"),
        ("a\nb\n", ""),
        ("a\n", "b\n"),
    ],
)
def test_rows_read_from_a_unified_diff_are_the_rows_of_the_two_texts(old: str, new: str) -> None:
    text = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "a.yaml", "b.yaml"))
    assert parse_unified(text) == diff_rows(old, new)
