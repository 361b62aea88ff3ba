"""Renderers for a plan: text (terminal), markdown (a pull-request comment) and json (the contract)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from gitsync.flows.loader import Problem
from gitsync.sync.diff import PropertyChange
from gitsync.sync.plan import FLOW_CHANGE_KINDS, ITEM_CHANGE_KINDS, FlowPlan, Plan, TriggerPlan

MARKDOWN_LIMIT = 65_536
"""GitHub refuses comments longer than this many characters."""
_VALUE_WIDTH = 80
_SIGNS = {"added": "+", "changed": "~", "removed": "-", "moved": ">"}
_INVALID_AT_BASE = "invalid at base, not compared"


def short(sha: str) -> str:
    return sha[:7]


def value_text(value: Any, width: int = _VALUE_WIDTH) -> str:
    """A property value on one line (JSON), shortened in the middle of nowhere but the end."""
    text = "(none)" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def summary(plan: Plan) -> str:
    flows = ", ".join(f"{len(plan.flow_uids(k))} {k}" for k in FLOW_CHANGE_KINDS)
    triggers = ", ".join(f"{len(plan.trigger_uids(k))} {k}" for k in ITEM_CHANGE_KINDS)
    text = f"flows: {flows}; triggers: {triggers}"
    if plan.namespace_files:
        files = ", ".join(f"{len(plan.namespace_file_names(k))} {k}" for k in ITEM_CHANGE_KINDS)
        text += f"; namespace files: {files}"
    return text


def _fires(trigger: TriggerPlan) -> str:
    if trigger.next_fires:
        return ", ".join(t.isoformat() for t in trigger.next_fires)
    return trigger.note or ""


def _schedule(trigger: TriggerPlan) -> str:
    return f'cron "{trigger.cron}" {trigger.timezone}' if trigger.cron else trigger.type


# ---------------------------------------------------------------------------------------------------------------
# text


def render_text(plan: Plan) -> str:
    folder = f" in {plan.folder}/" if plan.folder else ""
    lines = [f"plan {short(plan.base)}..{short(plan.head)}{folder}: {summary(plan)}"]
    lines += [f"note: {note}" for note in plan.notes]
    if plan.empty:
        lines.append("no changes")
    for flow in plan.flows:
        lines.extend(_text_flow(flow))
    for trigger in plan.triggers:
        lines.extend(_text_trigger(trigger))
    lines += [f"{_SIGNS[f.change]} namespace file {f.name}" for f in plan.namespace_files]
    if plan.errors:
        lines.append("errors (head is invalid: nothing would be applied):")
        lines += [f"  {p.format()}" for p in plan.errors]
    if plan.warnings:
        lines.append("warnings:")
        lines += [f"  {p.format()}" for p in plan.warnings]
    if plan.base_problems:
        lines.append("errors at base (not head's: they only limit what is compared):")
        lines += [f"  {p.format()}" for p in plan.base_problems]
    return "\n".join(lines) + "\n"


def _text_flow(flow: FlowPlan) -> Iterator[str]:
    where = flow.path or flow.old_path
    head = f"{_SIGNS[flow.change]} flow {flow.uid} ({where})"
    if flow.moved:
        head += f" moved from {flow.old_path}"
    if flow.formatting_only:
        head += ": formatting or comments only"
    if flow.invalid_at_base:
        head += f": {_INVALID_AT_BASE}"
    yield head
    if flow.restores:
        yield f"    restores the version of commit {short(flow.restores)}"
    for task in flow.tasks:
        yield f"    {_SIGNS[task.change]} task {task.id}" + (f" ({task.type})" if task.change == "added" else "")
        yield from (f"        {_text_property(p)}" for p in task.properties)
    yield from (f"    ~ {_text_property(p)}" for p in flow.properties)


def _text_property(change: PropertyChange) -> str:
    return f"{change.path}: {value_text(change.old)} -> {value_text(change.new)}"


def _text_trigger(trigger: TriggerPlan) -> Iterator[str]:
    yield f"{_SIGNS[trigger.change]} trigger {trigger.uid} ({_schedule(trigger)})"
    yield from (f"    {_text_property(p)}" for p in trigger.properties)
    if trigger.change != "removed" and (trigger.next_fires or trigger.note):
        yield f"    next: {_fires(trigger)}" if trigger.next_fires else f"    {trigger.note}"


# ---------------------------------------------------------------------------------------------------------------
# markdown

_MD_CHANGE = {"added": "🆕 added", "changed": "✏️ changed", "removed": "🗑️ removed", "moved": "🚚 moved"}


def render_markdown(plan: Plan, limit: int = MARKDOWN_LIMIT) -> str:
    """A pull-request comment; never longer than `limit` characters (the tail is cut with a note)."""
    return _fit("\n".join(_markdown_lines(plan)) + "\n", limit)


def _markdown_lines(plan: Plan) -> Iterator[str]:
    state = "✅ head is valid" if plan.valid else "❌ head is invalid: nothing would be applied"
    folder = f" (`{plan.folder}/`)" if plan.folder else ""
    yield f"### gitsync plan `{short(plan.base)}` → `{short(plan.head)}`{folder}"
    yield ""
    yield f"**{state}** · {summary(plan)}"
    yield from (f"> **Note:** {note}" for note in plan.notes)
    if plan.errors:
        yield from ("", "**Errors**", "")
        yield from (f"- {_md_problem(p)}" for p in plan.errors)
    if plan.empty:
        yield from ("", "No flow or trigger changes.")
    if plan.flows:
        yield from ("", "| change | flow | file | details |", "| --- | --- | --- | --- |")
        yield from (_md_flow_row(f) for f in plan.flows)
        for flow in plan.flows:
            yield from _md_flow_details(flow)
    if plan.triggers:
        yield from ("", "| change | trigger | schedule | next fires |", "| --- | --- | --- | --- |")
        yield from (_md_trigger_row(t) for t in plan.triggers)
        for trigger in plan.triggers:
            yield from _md_details(f"trigger <code>{trigger.uid}</code>", _md_properties(trigger.properties))
    if plan.namespace_files:
        yield from ("", "| change | namespace | namespace file |", "| --- | --- | --- |")
        for file in plan.namespace_files:
            namespace = _md_code(file.namespace, table=True) if file.namespace else "(none)"
            yield f"| {_MD_CHANGE[file.change]} | {namespace} | {_md_code(file.path, table=True)} |"
    if plan.warnings:
        yield from ("", f"<details><summary>{len(plan.warnings)} warning(s)</summary>", "")
        yield from (f"- {_md_problem(p)}" for p in plan.warnings)
        yield from ("", "</details>")
    if plan.base_problems:
        yield from ("", f"<details><summary>{len(plan.base_problems)} error(s) at base</summary>", "")
        yield from (f"- {_md_problem(p)}" for p in plan.base_problems)
        yield from ("", "</details>")


def _md_problem(problem: Problem) -> str:
    place = problem.path + "".join(f":{n}" for n in (problem.line, problem.column) if n is not None)
    where = f" ({problem.where})" if problem.where else ""
    return f"`{place}`{where}: {_md_escape(problem.message)}"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _md_code(text: str, table: bool = False) -> str:
    """Inline code; `|` is escaped only in table cells (elsewhere GitHub would show the backslash)."""
    if table:
        text = text.replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _md_flow_row(flow: FlowPlan) -> str:
    details: list[str] = []
    if flow.moved:
        details.append(f"moved from {_md_code(flow.old_path or '', table=True)}")
    if flow.formatting_only:
        details.append("formatting or comments only")
    if flow.invalid_at_base:
        details.append(_INVALID_AT_BASE)
    if flow.restores:
        details.append(f"restores the version of commit {_md_code(short(flow.restores))}")
    counts = {k: sum(1 for t in flow.tasks if t.change == k) for k in ("added", "changed", "removed")}
    details += [f"{n} task(s) {k}" for k, n in counts.items() if n]
    if flow.properties:
        details.append(f"{len(flow.properties)} flow propert{'y' if len(flow.properties) == 1 else 'ies'} changed")
    path = _md_code(flow.path or flow.old_path or "", table=True)
    return f"| {_MD_CHANGE[flow.change]} | {_md_code(flow.uid)} | {path} | " + "; ".join(details) + " |"


def _md_flow_details(flow: FlowPlan) -> Iterator[str]:
    body: list[str] = []
    for task in flow.tasks:
        suffix = f" ({_md_code(task.type)})" if task.change == "added" else ""
        body.append(f"- task {_md_code(task.id)} {task.change}{suffix}")
        body += [f"  {line}" for line in _md_properties(task.properties)]
    if flow.properties:
        body.append("- flow properties")
        body += [f"  {line}" for line in _md_properties(flow.properties)]
    yield from _md_details(f"<code>{flow.uid}</code>", body)


def _md_properties(changes: tuple[PropertyChange, ...]) -> list[str]:
    return [f"- {_md_code(c.path)}: {_md_code(value_text(c.old))} → {_md_code(value_text(c.new))}" for c in changes]


def _md_details(title: str, body: list[str]) -> Iterator[str]:
    if body:
        yield from ("", f"<details><summary>{title}</summary>", "", *body, "", "</details>")


def _md_trigger_row(trigger: TriggerPlan) -> str:
    fires = "<br>".join(t.isoformat() for t in trigger.next_fires) or _md_escape(trigger.note or "")
    if trigger.change == "removed":
        fires = ""
    schedule = f"{_md_code(trigger.cron, True)} {trigger.timezone}" if trigger.cron else _md_code(trigger.type)
    return f"| {_MD_CHANGE[trigger.change]} | {_md_code(trigger.uid)} | {schedule} | {fires} |"


def _fit(text: str, limit: int) -> str:
    """Cut at a line boundary so the text and a closing note fit in `limit`; close an open <details>."""
    if len(text) <= limit:
        return text
    reserve = 200
    cut = text.rfind("\n", 0, max(limit - reserve, 0)) + 1
    kept = text[:cut]
    if kept.count("<details>") > kept.count("</details>"):
        kept += "\n</details>\n"
    left = text[len(text[:cut]) :]
    note = (
        f"\n_… {len(left)} more characters ({left.count(chr(10))} lines) left out to fit a comment; "
        "run `gitsync plan --format text` for the whole plan._\n"
    )
    return kept + note


# ---------------------------------------------------------------------------------------------------------------
# json


def render_json(plan: Plan) -> str:
    return json.dumps(plan.as_dict(), indent=2, ensure_ascii=False) + "\n"


RENDERERS: dict[str, Callable[[Plan], str]] = {"text": render_text, "markdown": render_markdown, "json": render_json}
