"""The plan: what applying the desired flows (head) over the applied ones (base) would change. Pure: no I/O.

Callers pass only the flows of *touched* files (changed, added, deleted or moved between the two commits) on
both sides; a flow absent from both sides is unchanged and costs nothing. Flows are matched by uid
(`namespace.id`), never by path, so a file moved with the same uid is "moved", not removed and added.

Comparison is on a normalised form of each parsed flow (`diff`: defaults dropped, legacy type names replaced by
the canonical ones), so a change of formatting or comments only is recognised as such.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from gitsync.flows.loader import Problem
from gitsync.sync.diff import (
    ItemChangeKind,
    NamespaceFileChange,
    PropertyChange,
    TaskChange,
    by_id,
    diff_tasks,
    diff_values,
    flow_properties,
    normalise,
)
from runner.cron import CronError, parse_cron, parse_timezone
from runner.flow import Flow
from runner.plugin import Plugin, Trigger

FlowChangeKind = Literal["added", "changed", "removed", "moved"]
NEXT_FIRES = 3
DEFAULT_TIMEZONE = "UTC"


@dataclass(frozen=True, slots=True)
class FlowVersion:
    """One flow as one commit defines it: what a plan and an apply read of it.

    `flow`, the whole validated model, is kept only where a plan compares this version with another version of the
    same flow in a different blob (`gitsync.sync.compute` knows which); elsewhere it is None, so a first sync of
    10,000 flows holds these few fields of each flow, and one flow's model at a time.
    """

    path: str
    blob: str
    uid: str
    namespace: str
    id: str
    disabled: bool = False
    triggers: tuple[Trigger, ...] = ()
    """The flow's triggers, validated: the plan lists them, the apply stores them."""
    flow: Flow | None = None

    @classmethod
    def of(cls, path: str, blob: str, flow: Flow, keep_model: bool = True) -> FlowVersion:
        model = flow if keep_model else None
        triggers = tuple(flow.triggers or ())
        return cls(path, blob, flow.uid, flow.namespace, flow.id, bool(flow.disabled), triggers, model)

    def without_model(self) -> FlowVersion:
        return replace(self, flow=None) if self.flow is not None else self


@dataclass(frozen=True)
class TriggerPlan:
    flow: str
    id: str
    change: ItemChangeKind
    type: str
    properties: tuple[PropertyChange, ...] = ()
    cron: str | None = None
    timezone: str | None = None
    disabled: bool = False
    next_fires: tuple[datetime, ...] = ()
    note: str | None = None
    """Why there are no next fire times (disabled, an expression, a bad cron), when that is the case."""

    @property
    def uid(self) -> str:
        return f"{self.flow}/{self.id}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "flow": self.flow,
            "id": self.id,
            "change": self.change,
            "type": self.type,
            "cron": self.cron,
            "timezone": self.timezone,
            "disabled": self.disabled,
            "next_fires": [t.isoformat() for t in self.next_fires],
            "note": self.note,
            "properties": [p.as_dict() for p in self.properties],
        }


@dataclass(frozen=True)
class FlowPlan:
    uid: str
    change: FlowChangeKind
    path: str | None
    """The file at head (None for a removed flow)."""
    old_path: str | None = None
    """The file at base, when it differs from `path` (a move) or the flow was removed."""
    formatting_only: bool = False
    restores: str | None = None
    """Full sha of the earlier commit on base's history whose version of this flow head brings back."""
    invalid_at_base: bool = False
    """Head's file did not load at base, so the flow is shown as added without a comparison."""
    tasks: tuple[TaskChange, ...] = ()
    properties: tuple[PropertyChange, ...] = ()

    @property
    def moved(self) -> bool:
        return self.path is not None and self.old_path is not None and self.path != self.old_path

    def as_dict(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "change": self.change,
            "path": self.path,
            "old_path": self.old_path,
            "moved": self.moved,
            "formatting_only": self.formatting_only,
            "restores": self.restores,
            "invalid_at_base": self.invalid_at_base,
            "tasks": {kind: [t.as_dict() for t in self.tasks if t.change == kind] for kind in ITEM_CHANGE_KINDS},
            "properties": [p.as_dict() for p in self.properties],
        }


FLOW_CHANGE_KINDS: tuple[FlowChangeKind, ...] = ("added", "changed", "removed", "moved")
ITEM_CHANGE_KINDS: tuple[ItemChangeKind, ...] = ("added", "changed", "removed")


@dataclass(frozen=True)
class Plan:
    base: str
    head: str
    now: datetime
    folder: str = ""
    namespace_prefix: str | None = None
    unrelated_histories: bool = False
    problems: tuple[Problem, ...] = ()
    base_problems: tuple[Problem, ...] = ()
    """Errors of the base files the change touches that did not load; they do not make the plan invalid."""
    flows: tuple[FlowPlan, ...] = ()
    triggers: tuple[TriggerPlan, ...] = ()
    notes: tuple[str, ...] = ()
    namespace_files: tuple[NamespaceFileChange, ...] = ()
    """The namespace files (`_files/<namespace>/…`) that differ: executions of head's revisions see head's."""

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def empty(self) -> bool:
        return not self.flows and not self.triggers and not self.namespace_files

    def namespace_file_names(self, change: ItemChangeKind) -> list[str]:
        """`<namespace>/<path>` of the namespace files with this change."""
        return sorted(f.name for f in self.namespace_files if f.change == change)

    def flow_uids(self, change: FlowChangeKind) -> list[str]:
        """Uids by change; `changed` holds every flow whose content changed (a move alone is only `moved`)."""
        if change == "moved":
            return sorted(f.uid for f in self.flows if f.moved)
        return sorted(f.uid for f in self.flows if f.change == change)

    def trigger_uids(self, change: ItemChangeKind) -> list[str]:
        return sorted(t.uid for t in self.triggers if t.change == change)

    def as_dict(self) -> dict[str, Any]:
        """The JSON contract (DESIGN.md); keys are stable, lists sorted, times ISO-8601 with a UTC offset."""
        return {
            "base": self.base,
            "head": self.head,
            "path": self.folder,
            "namespace_prefix": self.namespace_prefix,
            "valid": self.valid,
            "unrelated_histories": self.unrelated_histories,
            "generated_at": self.now.isoformat(),
            "errors": [_problem_dict(p) for p in self.errors],
            "warnings": [_problem_dict(p) for p in self.warnings],
            "base_errors": [_problem_dict(p) for p in self.base_problems],
            "flows": {kind: self.flow_uids(kind) for kind in FLOW_CHANGE_KINDS},
            "triggers": {kind: self.trigger_uids(kind) for kind in ITEM_CHANGE_KINDS},
            "flow_changes": [f.as_dict() for f in self.flows],
            "trigger_changes": [t.as_dict() for t in self.triggers],
            "namespace_files": {kind: self.namespace_file_names(kind) for kind in ITEM_CHANGE_KINDS},
            "namespace_file_changes": [f.as_dict() for f in self.namespace_files],
            "notes": list(self.notes),
        }


def _problem_dict(problem: Problem) -> dict[str, Any]:
    return {
        "file": problem.path,
        "line": problem.line,
        "column": problem.column,
        "message": problem.message,
        "flow": problem.flow,
        "where": problem.where,
    }


# ---------------------------------------------------------------------------------------------------------------
# Building the plan


@dataclass
class PlanInput:
    """Everything `build_plan` needs; see the module docstring for what `applied`/`desired` hold."""

    base: str
    head: str
    applied: Mapping[str, FlowVersion]
    desired: Mapping[str, FlowVersion]
    now: datetime
    problems: Sequence[Problem] = ()
    base_problems: Sequence[Problem] = ()
    """Errors of touched base files that did not load: their flows are absent from `applied`."""
    unreadable: Collection[str] = ()
    """Head paths that did not load: the base flows they held are neither removed nor changed (unknown)."""
    seen: Mapping[str, str] = field(default_factory=dict)
    """Blob id -> full sha of the commit on base's first-parent history that introduced that content."""
    folder: str = ""
    namespace_prefix: str | None = None
    unrelated_histories: bool = False
    notes: Sequence[str] = ()
    default_timezone: str = DEFAULT_TIMEZONE
    """The zone of a Schedule that names none (Kestra uses the server's; keep in step with the scheduler)."""
    namespace_files: Sequence[NamespaceFileChange] = ()
    files_folder: str = "_files"
    """The repository folder of the namespace files, for the note on a file outside every namespace folder."""


def build_plan(given: PlanInput) -> Plan:
    flows: list[FlowPlan] = []
    triggers: list[TriggerPlan] = []
    invalid_at_base = {p.path for p in given.base_problems}
    for uid in sorted(set(given.applied) | set(given.desired)):
        old, new = given.applied.get(uid), given.desired.get(uid)
        if new is None and old is not None and old.path in given.unreadable:
            continue
        flow_plan = _flow_plan(old, new, given.seen)
        if flow_plan is not None:
            if old is None and flow_plan.path in invalid_at_base:
                flow_plan = replace(flow_plan, invalid_at_base=True)
            flows.append(flow_plan)
            triggers.extend(_trigger_plans(old, new, given.now, given.default_timezone))
    notes = list(given.notes)
    if given.base_problems:
        notes.append(_invalid_base_note(given.base, given.base_problems))
    namespaces = sorted({f.namespace for f in given.namespace_files if f.namespace})
    if namespaces:
        notes.append(
            f"namespace files changed in {', '.join(namespaces)}: the flows of "
            f"{'this namespace' if len(namespaces) == 1 else 'these namespaces'} get a new revision, whose executions "
            "read the files of this commit (executions of earlier revisions, and their replays, keep theirs)"
        )
    loose = sorted(f.path for f in given.namespace_files if not f.namespace and f.change != "removed")
    if loose:
        notes.append(
            f"{len(loose)} file(s) directly in {given.files_folder}/ belong to no namespace and no execution sees "
            f"them ({', '.join(loose[:5])}); put each in a folder named after its namespace "
            f"({given.files_folder}/company.team/…)"
        )
    if given.unrelated_histories:
        notes.append("unrelated histories: base and head share no commit (a force-push?); compared as trees")
    return Plan(
        base=given.base,
        head=given.head,
        now=given.now,
        folder=given.folder,
        namespace_prefix=given.namespace_prefix,
        unrelated_histories=given.unrelated_histories,
        problems=_sorted(given.problems),
        base_problems=_sorted(given.base_problems),
        flows=tuple(flows),
        triggers=tuple(sorted(triggers, key=lambda t: t.uid)),
        notes=tuple(notes),
        namespace_files=tuple(given.namespace_files),
    )


def _sorted(problems: Sequence[Problem]) -> tuple[Problem, ...]:
    return tuple(sorted(problems, key=lambda p: (p.path, p.line or 0, p.column or 0, p.message)))


def _invalid_base_note(base: str, problems: Sequence[Problem]) -> str:
    """What a base file that does not load means for the plan (its flows are unknown, so nothing is compared)."""
    files = ", ".join(sorted({p.path for p in problems}))
    return (
        f"base {base[:7]} is invalid: {len(problems)} error(s) in {files}. The flows of these files cannot be "
        "read at base, so they are not compared: each flow head defines in them is shown as added, and a flow "
        "they no longer define is not shown as removed"
    )


def _flow_plan(old: FlowVersion | None, new: FlowVersion | None, seen: Mapping[str, str]) -> FlowPlan | None:
    if old is None and new is not None:
        return FlowPlan(new.uid, "added", new.path, restores=seen.get(new.blob))
    if new is None and old is not None:
        return FlowPlan(old.uid, "removed", None, old_path=old.path)
    assert old is not None and new is not None
    old_path = old.path if old.path != new.path else None
    if old.blob == new.blob:
        return FlowPlan(new.uid, "moved", new.path, old_path=old.path) if old_path else None
    before, after = old.flow, new.flow
    assert before is not None and after is not None, f"{new.uid}: both versions of a changed flow keep their model"
    tasks = tuple(diff_tasks(before, after))
    properties = tuple(diff_values(flow_properties(before), flow_properties(after)))
    same_model = not tasks and not properties and normalise(before) == normalise(after)
    return FlowPlan(
        new.uid,
        "changed",
        new.path,
        old_path=old_path,
        formatting_only=same_model,
        restores=seen.get(new.blob),
        tasks=tasks,
        properties=properties,
    )


def _trigger_plans(
    old: FlowVersion | None, new: FlowVersion | None, now: datetime, default_timezone: str
) -> list[TriggerPlan]:
    before = by_id(old.triggers) if old else {}
    after = by_id(new.triggers) if new else {}
    uid = (new or old).uid  # type: ignore[union-attr]
    flow_disabled = bool(new and new.disabled)
    out: list[TriggerPlan] = []
    for ident in sorted(set(before) | set(after)):
        a, b = before.get(ident), after.get(ident)
        if b is None and a is not None:
            out.append(
                TriggerPlan(uid, ident, "removed", type(a).type_name or a.type, **_schedule_fields(a, default_timezone))
            )
            continue
        assert b is not None
        if a is None:
            change: ItemChangeKind = "added"
            properties: tuple[PropertyChange, ...] = ()
        else:
            properties = tuple(diff_values(normalise(a), normalise(b)))
            if not properties:
                continue
            change = "changed"
        plan = TriggerPlan(
            uid, ident, change, type(b).type_name or b.type, properties, **_schedule_fields(b, default_timezone)
        )
        out.append(_with_next_fires(plan, now, flow_disabled, bool(getattr(b, "withSeconds", False))))
    return out


def _schedule_fields(trigger: Plugin, default_timezone: str) -> dict[str, Any]:
    cron = getattr(trigger, "cron", None)
    if not isinstance(cron, str):
        return {"disabled": bool(getattr(trigger, "disabled", False))}
    timezone = getattr(trigger, "timezone", None)
    return {
        "cron": cron,
        "timezone": timezone if isinstance(timezone, str) and timezone else default_timezone,
        "disabled": bool(getattr(trigger, "disabled", False)),
    }


def _with_next_fires(plan: TriggerPlan, now: datetime, flow_disabled: bool, with_seconds: bool) -> TriggerPlan:
    """The next fire times of a cron trigger, in its own timezone; a note instead when it will not fire."""
    if plan.cron is None or plan.timezone is None:
        return plan
    if plan.disabled or flow_disabled:
        return replace(plan, note="disabled: will not fire" if plan.disabled else "the flow is disabled")
    if "{{" in plan.cron or "{{" in plan.timezone:
        return replace(plan, note="cron or timezone is an expression; fire times are known at run time")
    try:
        cron = parse_cron(plan.cron, with_seconds)
        zone = parse_timezone(plan.timezone)
    except (CronError, ValueError) as exc:
        return replace(plan, note=str(exc))
    fires = tuple(cron.next_fires(now, NEXT_FIRES, zone))
    return replace(plan, next_fires=fires, note=None if fires else "the cron expression never fires")
