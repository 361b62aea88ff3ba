"""One sync of one source: fetch -> plan -> apply -> report, as a short list of steps.

Invariant 1: a commit is applied whole or not at all. Every flow, revision, trigger, the sync row and the
status to post are written in ONE SQLite transaction; an invalid commit writes only its sync row (with the
errors) and a failure status, and the previous commit stays active.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from dulwich.objects import Commit

from gitsync.config import SourceConfig
from gitsync.errors import FetchError
from gitsync.git import trees as gitread
from gitsync.git.fetch import FetchResult, fetch
from gitsync.git.trees import GitReadError
from gitsync.redact import redact_url
from gitsync.schedule.firing import is_schedule
from gitsync.state import flows, outbox, sources, syncs, triggers
from gitsync.state.database import Store, now_iso
from gitsync.sync.compute import PlanComputation, compute_plan
from gitsync.sync.plan import FlowVersion, Plan
from gitsync.sync.render import render_markdown
from runner.registry import Registry

log = logging.getLogger("gitsync.sync")

Outcome = Literal["applied", "unchanged", "invalid", "refused", "failed"]
SYNC_CONTEXT = "gitsync/sync"


@dataclass(frozen=True)
class SyncResult:
    source: str
    outcome: Outcome
    commit: str | None = None
    previous: str | None = None
    plan: Plan | None = None
    summary: str = ""
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sync_id: int | None = None

    @property
    def exit_code(self) -> int:
        """DESIGN.md: 0 applied or nothing to do, 1 invalid, 3 fetch failed."""
        return {"applied": 0, "unchanged": 0, "invalid": 1, "refused": 1, "failed": 3}[self.outcome]


Fetcher = Callable[[SourceConfig, Path], FetchResult]


def sync_source(
    store: Store,
    source: SourceConfig,
    data_dir: Path,
    registry: Registry,
    now: datetime | None = None,
    fetcher: Fetcher = fetch,
    public_url: str | None = None,
    on_status: Callable[[], None] | None = None,
) -> SyncResult:
    """Fetch the source's branch and apply its head if it differs from the applied commit.

    `on_status` is called once the `pending` status is queued (the daemon wakes its sender, so the host sees
    the sync start instead of only its end)."""
    started = now_iso()
    try:
        fetched = fetcher(source, data_dir)
    except FetchError as exc:
        return _record_failure(store, source, started, str(exc))
    previous = sources.applied_commit(store, source.name)
    applied_settings = sources.applied_settings(store, source.name)
    changed = _settings_changes(applied_settings, source)
    if previous == fetched.commit and not changed:
        log.debug("%s: no changes since last sync: observed revision %s", source.name, fetched.revision)
        return SyncResult(source.name, "unchanged", fetched.commit, previous, summary="no changes")
    if changed:
        log.info("%s: source settings changed (%s): planning %s again", source.name, changed, fetched.commit[:12])
    with store.atomic() as conn:
        _status(conn, source, fetched.commit, "pending", "syncing", public_url)
    if on_status is not None:
        on_status()
    try:
        base_folder = applied_settings.path if changed and applied_settings is not None else None
        computation = _plan(store, source, fetched, previous, registry, now or datetime.now(UTC), changed, base_folder)
    except gitread.BadPathError as exc:  # a file name that is not UTF-8, a malformed tree: the commit is invalid
        empty = Plan(base=previous or "", head=fetched.commit, now=now or datetime.now(UTC), folder=source.path or "")
        errors = [str(exc)]
        return _record_rejection(store, source, fetched, previous, started, "invalid", errors, [], empty, public_url)
    plan = computation.plan
    warnings = [p.format() for p in plan.warnings]
    if fetched.forced and previous is not None:
        warnings.insert(0, f"force-push: {fetched.commit[:12]} does not descend from the applied {previous[:12]}")
    errors = [p.format() for p in plan.errors] + _ownership_errors(store, source, computation)
    if errors:
        return _record_rejection(
            store, source, fetched, previous, started, "invalid", errors, warnings, plan, public_url
        )
    # Only the touched flows are read from the state: the cost follows the change, not the repository.
    stored = flows.count_flows(store, source.name)
    removed = _removed(store, source, computation)
    touched = flows.applied_flows(store, source.name, uids=sorted(set(computation.desired) | removed))
    remaining = stored - len(removed & set(touched)) + len(set(computation.desired) - set(touched))
    if remaining == 0 and stored and not source.allow_empty:
        reason = (
            f"refused: commit {fetched.commit[:12]} removes every flow of source {source.name!r} "
            f"(is path {source.path or '/'!r} right? set allow_empty: true to allow it)"
        )
        return _record_rejection(
            store, source, fetched, previous, started, "refused", [reason], warnings, plan, public_url
        )
    return _apply(
        store,
        source,
        fetched,
        previous,
        started,
        computation,
        removed,
        touched,
        warnings,
        public_url,
        registry,
        changed,
    )


def _removed(store: Store, source: SourceConfig, computation: PlanComputation) -> set[str]:
    """Uids the apply removes: from the tree diff, or, after a full load, whatever the state holds that head lacks."""
    if computation.plan.base:
        return set(computation.plan.flow_uids("removed"))
    return set(flows.applied_uids(store, source.name)) - set(computation.desired)


def _plan(
    store: Store,
    source: SourceConfig,
    fetched: FetchResult,
    previous: str | None,
    registry: Registry,
    now: datetime,
    settings_changed: str,
    base_folder: str | None,
) -> PlanComputation:
    """The plan of the fetched head over the applied commit. When the source's path or prefix changed since that
    commit was applied, every flow file is compared (base's from the folder it was read from), not only the
    changed ones: flows now outside the folder are removed, and every flow is checked against the prefix."""
    known = flows.UidPaths(store, source.name)
    base = previous if previous is not None and _has_commit(fetched.repo_path, previous) else None
    notes = [f"source settings changed: {settings_changed}; every flow of the commit is compared again"]
    if not settings_changed:
        notes = []
    computation = compute_plan(
        str(fetched.repo_path),
        base,
        fetched.commit,
        folder=source.path,
        namespace_prefix=source.namespace_prefix,
        files_folder=source.namespace_files,
        registry=registry,
        now=now,
        known_uids=known,
        detect_reverts=False,  # applying needs no history walk; `gitsync plan` shows reverts to reviewers
        base_folder=base_folder,
        notes=notes,
    )
    if base is None and previous is not None:
        log.warning(
            "%s: applied commit %s is not in the cache; comparing with the state database", source.name, previous
        )
    return computation


def _settings_changes(applied: sources.AppliedSettings | None, source: SourceConfig) -> str:
    """The settings that shape the plan and differ from those the applied commit was planned with ('' if none).

    The branch is not one of them: it decides which commit is fetched, and a new commit is planned anyway."""
    if applied is None:
        return ""
    pairs = [
        ("path", applied.path, source.path or "", "(repository root)"),
        ("namespace_prefix", applied.namespace_prefix, source.namespace_prefix or "", "(every namespace)"),
    ]
    return ", ".join(f"{key} {old or empty} → {new or empty}" for key, old, new, empty in pairs if old != new)


def _has_commit(repo_path: Path, sha: str) -> bool:
    repo = gitread.open_repo(str(repo_path))
    try:
        return gitread.object_id(sha) in repo.object_store
    finally:
        repo.close()


def _ownership_errors(store: Store, source: SourceConfig, computation: PlanComputation) -> list[str]:
    """Invariant 6: another source never gives up a flow to this one."""
    added = [uid for uid in computation.desired if uid not in computation.applied]
    owners = flows.flows_owned_elsewhere(store, source.name, added)
    return [
        f"{computation.desired[uid].path}: flow '{uid}' belongs to source {owner!r}; each flow has one source"
        for uid, owner in sorted(owners.items())
    ]


def _apply(
    store: Store,
    source: SourceConfig,
    fetched: FetchResult,
    previous: str | None,
    started: str,
    computation: PlanComputation,
    removed: set[str],
    in_db: dict[str, flows.AppliedFlow],
    warnings: list[str],
    public_url: str | None,
    registry: Registry,
    settings_changed: str,
) -> SyncResult:
    plan = computation.plan
    author, message = _commit_info(fetched)
    applied_at = now_iso()
    plan_markdown = render_markdown(plan)  # before the transaction: it holds the write lock
    with store.atomic() as conn:
        current = sources.applied_commit_now(conn, source.name)
        if current != previous:  # another process (the daemon, `gitsync sync`) applied a commit while this planned
            return _superseded(conn, source, fetched, current, public_url)
        sources.upsert_source(
            conn,
            source.name,
            redact_url(source.repo),
            fetched.branch,
            source.path,
            source.namespace_prefix,
            fetched.commit,
        )
        written = set(removed)
        for uid, version in sorted(computation.desired.items()):
            existing = in_db.get(uid)
            if existing is not None and existing.blob == version.blob and existing.path == version.path:
                continue
            written.add(uid)
            flows.write_revision(
                conn, _revision_row(source, fetched, version, computation, author, message), applied_at
            )
        for uid in sorted(removed):
            flows.delete_flow(conn, uid, fetched.commit, author, message, applied_at)
        _revise_for_files(conn, source.name, fetched.commit, computation, written, (author, message, applied_at))
        _apply_triggers(conn, computation, removed, applied_at, registry)
        summary = _summary(plan, removed, settings_changed)
        sync_id = syncs.insert_sync(
            conn,
            source.name,
            fetched.commit,
            previous,
            "applied",
            started,
            summary,
            warnings=[{"message": w} for w in warnings],
            plan=plan_markdown,
        )
        _status(conn, source, fetched.commit, "success", summary, public_url)
    log.info("%s: applied %s: %s", source.name, fetched.commit[:12], summary)
    return SyncResult(source.name, "applied", fetched.commit, previous, plan, summary, [], warnings, sync_id)


def _revise_for_files(
    conn: Any, source: str, commit: str, computation: PlanComputation, written: set[str], info: tuple[str, str, str]
) -> None:
    """The flows of a namespace whose namespace files changed get a new revision at this commit (same file), so
    their next executions read the new files while executions of the old revision keep the old ones."""
    changed = sorted({f.namespace for f in computation.plan.namespace_files if f.namespace})
    author, message, applied_at = info
    revised = flows.revise_for_namespace_files(conn, source, changed, written, commit, author, message, applied_at)
    if revised:
        log.info("%s: namespace files changed: new revisions of %s", source, ", ".join(revised))


def _superseded(
    conn: Any, source: SourceConfig, fetched: FetchResult, current: str | None, public_url: str | None
) -> SyncResult:
    """Compare-and-set lost: nothing is applied (the same commit twice, or an older one over a newer one); the
    `pending` status this sync queued is closed, and the next sync plans from what is applied now."""
    if current == fetched.commit:
        summary = "no changes: another gitsync process applied this commit while this sync was planning it"
        _status(conn, source, fetched.commit, "success", "applied (by another gitsync process)", public_url)
    else:
        summary = (
            f"not applied: another gitsync process applied {str(current)[:12]} while this sync was planning "
            f"{fetched.commit[:12]}; the next sync plans from {str(current)[:12]}"
        )
        _status(conn, source, fetched.commit, "error", summary, public_url)
    log.warning("%s: %s", source.name, summary)
    return SyncResult(source.name, "unchanged", current, current, summary=summary)


def _revision_row(
    source: SourceConfig,
    fetched: FetchResult,
    version: FlowVersion,
    computation: PlanComputation,
    author: str,
    message: str,
) -> flows.RevisionRow:
    return flows.RevisionRow(
        uid=version.uid,
        namespace=version.namespace,
        flow_id=version.id,
        source=source.name,
        commit=fetched.commit,
        path=version.path,
        blob=version.blob,
        author=author,
        message=message,
        text=computation.texts.get(version.path),
        disabled=version.disabled,
    )


def _apply_triggers(
    conn: Any, computation: PlanComputation, removed: set[str], applied_at: str, registry: Registry
) -> None:
    """Triggers follow the plan; a changed trigger keeps its bookkeeping, a removed flow's triggers go.

    After a full load (no base commit) every trigger of every loaded flow is upserted, and a stored trigger
    of a loaded flow that the flow no longer declares is retired.
    """
    plan = computation.plan
    declared = {f"{uid}/{t.id}": (uid, t) for uid, v in computation.desired.items() for t in v.triggers}
    wanted = {t.uid for t in plan.triggers if t.change in ("added", "changed")}
    retired = {t.uid for t in plan.triggers if t.change == "removed"}
    watched = removed if plan.base else removed | set(computation.desired)
    stored = triggers.trigger_uids_of(conn, sorted(watched))
    retired |= {uid for uid, flow_uid in stored.items() if flow_uid in removed}
    if not plan.base:
        wanted |= set(declared)
        retired |= {uid for uid in stored if uid not in declared}
    triggers.delete_triggers(conn, sorted(retired))
    for trigger_uid in sorted(wanted & set(declared)):
        flow_uid, trigger = declared[trigger_uid]
        triggers.upsert_trigger(conn, _trigger_row(flow_uid, trigger, registry), applied_at)


def _trigger_row(flow_uid: str, trigger: Any, registry: Registry) -> triggers.TriggerRow:
    """The stored trigger: `type` is the registry's canonical name (a legacy alias is never stored)."""
    type_name = registry.canonical(trigger.type) or type(trigger).type_name or trigger.type
    spec = trigger.model_dump(mode="json", by_alias=True, exclude_none=True)
    schedule = is_schedule(type_name)
    return triggers.TriggerRow(
        uid=f"{flow_uid}/{trigger.id}",
        flow_uid=flow_uid,
        trigger_id=trigger.id,
        type=type_name,
        spec=spec,
        cron=getattr(trigger, "cron", None) if schedule else None,
        with_seconds=bool(getattr(trigger, "withSeconds", False)),
        timezone=getattr(trigger, "timezone", None) if schedule else None,
        disabled=bool(trigger.disabled),
    )


def _summary(plan: Plan, removed: set[str], settings_changed: str = "") -> str:
    added = len(plan.flow_uids("added"))
    changed = len(plan.flow_uids("changed")) + len([f for f in plan.flows if f.change == "moved"])
    trigger_changes = len(plan.triggers)
    summary = f"applied: +{added} ~{changed} -{len(removed)} flows, {trigger_changes} trigger change(s)"
    return f"{summary} (source settings changed: {settings_changed})" if settings_changed else summary


def _commit_info(fetched: FetchResult) -> tuple[str, str]:
    repo = gitread.open_repo(str(fetched.repo_path))
    try:
        commit = repo.object_store[gitread.object_id(fetched.commit)]
        if not isinstance(commit, Commit):
            return "", ""
        return commit.author.decode("utf-8", "replace"), commit.message.decode("utf-8", "replace").strip()
    except (KeyError, GitReadError):
        return "", ""
    finally:
        repo.close()


def _status(conn: Any, source: SourceConfig, commit: str, status: str, description: str, url: str | None) -> None:
    """Queue a `gitsync/sync` status, when the source reports to a git host (a `status:` block)."""
    if source.status is not None:
        outbox.enqueue_status(conn, source.name, commit, SYNC_CONTEXT, status, description, url)


def _record_failure(store: Store, source: SourceConfig, started: str, reason: str) -> SyncResult:
    with store.atomic() as conn:
        sync_id = syncs.insert_sync(
            conn,
            source.name,
            None,
            sources.applied_commit(store, source.name),
            "failed",
            started,
            reason,
            errors=[{"message": reason}],
        )
    log.warning("%s: fetch failed: %s", source.name, reason)
    return SyncResult(source.name, "failed", None, None, None, reason, [reason], [], sync_id)


def _record_rejection(
    store: Store,
    source: SourceConfig,
    fetched: FetchResult,
    previous: str | None,
    started: str,
    outcome: Outcome,
    errors: list[str],
    warnings: list[str],
    plan: Plan,
    public_url: str | None = None,
) -> SyncResult:
    """Nothing is applied: the previous commit stays active; the sync row and a failure status say why."""
    first = errors[0]
    description = first if len(errors) == 1 else f"{first} (+{len(errors) - 1} more)"
    error_rows = [p.as_dict() for p in plan.errors] or [{"message": e} for e in errors]
    if len(error_rows) < len(errors):
        error_rows += [{"message": e} for e in errors[len(error_rows) :]]
    plan_markdown = render_markdown(plan)
    with store.atomic() as conn:
        sync_id = syncs.insert_sync(
            conn,
            source.name,
            fetched.commit,
            previous,
            outcome,
            started,
            description,
            errors=error_rows,
            warnings=[{"message": w} for w in warnings],
            plan=plan_markdown,
        )
        _status(conn, source, fetched.commit, "failure", description, public_url)
    log.warning("%s: %s %s: %s", source.name, outcome, fetched.commit[:12], description)
    return SyncResult(source.name, outcome, fetched.commit, previous, plan, description, errors, warnings, sync_id)
