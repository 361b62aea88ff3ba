"""The dashboard, a namespace's flows, a flow (source at its commit, task graph, revisions, last runs) and the diff
between two revisions. Each page is built from the views the API answers with (`gitsync.views`), so a page
shows what the API shows."""

from __future__ import annotations

from typing import Any

import yaml

from gitsync.views import dashboard as dashboard_view
from gitsync.views import executions, flows
from gitsync.views.context import ViewContext
from gitsync.views.filters import of_flow
from gitsync.web.charts import day_families, histogram
from gitsync.web.diff import counts, parse_unified
from gitsync.web.graph import Node, build_graph
from gitsync.web.highlight import highlight_yaml, render_lines, task_lines
from gitsync.web.render import View, markup
from gitsync.web.states import FAMILY_NAMES
from gitsync.web.svg import flow_href, render_svg

LAST_RUNS = 10
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def dashboard(ctx: ViewContext) -> View:
    board = dashboard_view.dashboard(ctx)
    days = [(d.day, d.states) for d in board.executions_by_day]
    return View(
        "dashboard.html",
        {
            "nav": "dashboard",
            "board": board,
            "namespaces": flows.namespaces(ctx),
            "chart": markup(histogram(days)),
            "day_rows": [(day, day_families(states), sum(states.values())) for day, states in days],
            "families": FAMILY_NAMES,
        },
    )


def namespace(ctx: ViewContext, name: str, q: str | None, cursor: str | None) -> View:
    page = flows.flows_page(ctx, namespace=name, q=q, after=cursor, limit=100)
    children = [n for n in flows.namespaces(ctx) if n.name.startswith(name + ".")]
    known = page.items or children or q or cursor
    return View(
        "namespace.html",
        {"nav": "", "namespace": name, "page": page, "children": children, "q": q or ""},
        200 if known else 404,
    )


def document(text: str | None) -> dict[str, Any]:
    """The flow's YAML as data (the sync validated it; anything else draws an empty graph)."""
    try:
        data = yaml.load(text or "", Loader=_Loader)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def graph_svg(text: str | None, title: str, states: dict[str, str] | None = None, link_lines: bool = True) -> Any:
    """The task graph of a flow's YAML: a Subflow links to its flow; any other task to its line in the source
    shown on the same page (`link_lines`) or to its task run row (`#task-<id>`)."""
    lines = task_lines(text or "") if link_lines else {}

    def href(node: Node) -> str:
        if node.subflow is not None:
            return flow_href(*node.subflow)
        if node.task_id in lines:
            return f"#L{lines[node.task_id]}"
        return "#task-" + node.task_id

    return markup(render_svg(build_graph(document(text)), title, states=states, href=href))


def flow(ctx: ViewContext, namespace: str, flow_id: str, revision: int | None) -> View:
    detail = flows.flow(ctx, namespace, flow_id)
    source = flows.source(ctx, namespace, flow_id, revision)
    text = source.text or ""
    changed = None
    if detail.last_success_revision is not None and detail.last_success_revision != detail.revision:
        rows = parse_unified(flows.diff(ctx, namespace, flow_id, detail.last_success_revision).diff)
        changed = {"rows": rows, "counts": counts(rows), "from": detail.last_success_revision}
    last_runs = executions.executions_page(ctx, of_flow(detail.uid), limit=LAST_RUNS)
    return View(
        "flow.html",
        {
            "nav": "",
            "flow": detail,
            "source": source,
            "viewing_active": source.revision == detail.revision,
            "graph": graph_svg(text, f"Task graph of {detail.uid}, revision {source.revision}"),
            "code": markup(
                render_lines(highlight_yaml(text), label=f"YAML of {detail.uid}, revision {source.revision}")
            ),
            "changed": changed,
            "runs": last_runs,
        },
    )


def diff(ctx: ViewContext, namespace: str, flow_id: str, old: int | None, new: int | None) -> View:
    revisions = flows.revisions(ctx, namespace, flow_id)
    context: dict[str, Any] = {
        "nav": "",
        "namespace": namespace,
        "flow_id": flow_id,
        "uid": f"{namespace}.{flow_id}",
        "revisions": revisions,
        "old": old,
        "new": new,
        "result": None,
    }
    if old is None:
        return View("diff.html", context, 200)
    result = flows.diff(ctx, namespace, flow_id, old, new)
    rows = parse_unified(result.diff)
    context.update(result=result, rows=rows, counts=counts(rows), new=result.to_revision)
    return View("diff.html", context)
