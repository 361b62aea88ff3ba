"""Namespaces, flows, their sources at a revision, their revisions and the diff between two."""

from __future__ import annotations

import difflib
from typing import Any

import yaml

from gitsync.state import execution_pages, flows, triggers
from gitsync.views.context import ViewContext
from gitsync.views.errors import NotFound
from gitsync.views.models import (
    ExecutionBrief,
    Flow,
    FlowDiff,
    FlowSource,
    FlowSummary,
    InputSpec,
    Namespace,
    Page,
    Revision,
)
from gitsync.views.triggers import trigger_view

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def namespaces(ctx: ViewContext) -> list[Namespace]:
    return [
        Namespace(name=r["name"], flows=r["flows"], disabled=r["disabled"] or 0) for r in flows.namespaces(ctx.store)
    ]


def _summary(ctx: ViewContext, row: dict[str, Any], last: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "uid": row["uid"],
        "namespace": row["namespace"],
        "id": row["id"],
        "revision": row["revision"],
        "commit": ctx.commit(row["source"], row["commit"]),
        "source": row["source"],
        "path": row["path"],
        "disabled": row["disabled"],
        "author": row["author"],
        "message": row["message"],
        "applied_at": row["applied_at"],
        "last_execution": ExecutionBrief(**last) if last else None,
    }


def flows_page(
    ctx: ViewContext,
    *,
    namespace: str | None = None,
    q: str | None = None,
    source: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> Page[FlowSummary]:
    start = after or None
    rows = flows.flows_page(ctx.store, namespace=namespace, text=q, source=source, after=start, limit=limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    last = execution_pages.last_executions(ctx.store, [r["uid"] for r in rows])
    items = [FlowSummary(**_summary(ctx, row, last.get(row["uid"]))) for row in rows]
    return Page(items=items, next_cursor=str(rows[-1]["uid"]) if more and rows else None)


def _document(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def input_specs(document: dict[str, Any]) -> list[InputSpec]:
    """The flow's inputs as its Run form asks for them (read from the YAML as data: the sync validated it)."""
    specs = []
    for item in document.get("inputs") or []:
        if not isinstance(item, dict) or not isinstance(item.get("id", item.get("name")), str):
            continue
        kind = str(item.get("type", "STRING")).upper()
        values = item.get("values", item.get("options"))
        specs.append(
            InputSpec(
                id=str(item.get("id", item.get("name"))),
                type=kind,
                required=bool(item.get("required", True)),
                defaults=item.get("defaults"),
                description=item.get("description") if isinstance(item.get("description"), str) else None,
                values=values if isinstance(values, list) else None,
                multiple=kind == "MULTISELECT",
            )
        )
    return specs


def _revision(ctx: ViewContext, uid_source: str, row: dict[str, Any]) -> Revision:
    return Revision(
        revision=row["revision"],
        commit=ctx.commit(uid_source, row["commit"]),
        author=row["author"],
        message=row["message"],
        applied_at=row["applied_at"],
        path=row["path"],
        deleted=row["deleted"],
    )


def flow(ctx: ViewContext, namespace: str, flow_id: str) -> Flow:
    uid = f"{namespace}.{flow_id}"
    row = flows.flow_row(ctx.store, uid)
    if row is None:
        raise NotFound(f"no active flow {uid}: it was never synced, or a commit removed it")
    current = flows.revision_row(ctx.store, uid, row["revision"])
    document = _document(current["text"] if current else None)
    last = execution_pages.last_executions(ctx.store, [uid]).get(uid)
    success = execution_pages.last_success(ctx.store, uid)
    labels = document.get("labels")
    return Flow(
        **_summary(ctx, row, last),
        description=document.get("description") if isinstance(document.get("description"), str) else None,
        labels=labels if isinstance(labels, dict) else {},
        inputs=input_specs(document),
        triggers=[trigger_view(t) for t in triggers.list_triggers(ctx.store, uid)],
        revisions=[_revision(ctx, row["source"], r) for r in reversed(flows.history(ctx.store, uid))],
        last_success=ExecutionBrief(id=success["id"], state="SUCCESS", created_at=success["ended_at"] or "")
        if success
        else None,
        last_success_revision=success["revision"] if success else None,
    )


def revisions(ctx: ViewContext, namespace: str, flow_id: str) -> list[Revision]:
    """Every revision of a flow, newest first (a removed flow's too)."""
    uid = f"{namespace}.{flow_id}"
    rows = flows.history(ctx.store, uid)
    if not rows:
        raise NotFound(f"no flow {uid} was ever synced")
    source = str((flows.revision_row(ctx.store, uid, rows[-1]["revision"]) or {}).get("source") or "")
    return [_revision(ctx, source, r) for r in reversed(rows)]


def _revision_at(ctx: ViewContext, uid: str, revision: int | None) -> dict[str, Any]:
    if revision is None:
        active = flows.flow_row(ctx.store, uid)
        if active is None:
            raise NotFound(f"no active flow {uid}: name a revision (?revision=N)")
        revision = int(active["revision"])
    row = flows.revision_row(ctx.store, uid, revision)
    if row is None:
        raise NotFound(f"flow {uid} has no revision {revision}")
    return row


def source(ctx: ViewContext, namespace: str, flow_id: str, revision: int | None = None) -> FlowSource:
    """The flow's YAML at `revision` (default: the active one), as git held it at that revision's commit."""
    row = _revision_at(ctx, f"{namespace}.{flow_id}", revision)
    return FlowSource(
        uid=row["uid"],
        revision=row["revision"],
        commit=ctx.commit(row["source"], row["commit"]),
        path=row["path"],
        deleted=row["deleted"],
        text=None if row["deleted"] else row["text"],
    )


def diff(ctx: ViewContext, namespace: str, flow_id: str, old: int, new: int | None = None) -> FlowDiff:
    """The unified diff of the flow's YAML from revision `old` to `new` (default: the active one)."""
    uid = f"{namespace}.{flow_id}"
    before, after = _revision_at(ctx, uid, old), _revision_at(ctx, uid, new)
    lines = difflib.unified_diff(
        (before["text"] or "").splitlines(keepends=True),
        (after["text"] or "").splitlines(keepends=True),
        fromfile=f"{before['path']} (revision {before['revision']}, {before['commit'][:12]})",
        tofile=f"{after['path']} (revision {after['revision']}, {after['commit'][:12]})",
    )
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return FlowDiff(
        uid=uid,
        from_revision=before["revision"],
        to_revision=after["revision"],
        from_commit=ctx.commit(before["source"], before["commit"]),
        to_commit=ctx.commit(after["source"], after["commit"]),
        diff=text,
    )
