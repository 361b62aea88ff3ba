"""Command handlers for the state commands: `sync` and the read commands (`flows`, `history`, `syncs`, `triggers`).

Every command that reads or writes state takes `--db FILE` or `--config FILE` (DESIGN.md).
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gitsync.compose import data_folder, load_registry, open_store
from gitsync.config import Settings, SourceConfig, load_settings, source_name_from_repo
from gitsync.errors import ConfigError, GitSyncError, UsageError
from gitsync.flows.loader import Problem, Severity
from gitsync.state import flows, syncs, triggers
from gitsync.state.database import Store
from runner.cron import CronError, parse_cron, parse_timezone
from runner.registry import Registry

if TYPE_CHECKING:
    from gitsync.sync.apply import SyncResult

T = TypeVar("T")


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {"db": args.db, "data_dir": args.data_dir}
    if getattr(args, "listen", None):
        overrides["http.listen"] = args.listen
    repo = getattr(args, "repo", None)
    if repo:
        source: dict[str, Any] = {
            "name": args.name or _source_name(repo),
            "repo": repo,
            "branch": args.branch,
            "path": args.path or "",
            "namespace_prefix": args.namespace_prefix,
            "token_env": args.token_env,
            "allow_empty": args.allow_empty,
            "poll": getattr(args, "poll", None),
        }
        overrides["sources"] = [{k: v for k, v in source.items() if v is not None}]
    return load_settings(args.config, overrides)


def _source_name(repo: str) -> str:
    """A `--repo` without `--name`: named from the URL's path or host, never its credentials or query."""
    return source_name_from_repo(repo)


def _settings_with_sources(args: argparse.Namespace) -> Settings | None:
    """The settings of a command that needs at least one source; None (said on stderr) when there is none."""
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        print(f"gitsync {args.command}: {exc}", file=sys.stderr)
        return None
    if not settings.sources:
        print(f"gitsync {args.command}: no source: give --repo or a --config file with sources", file=sys.stderr)
        return None
    return settings


def run_daemon(args: argparse.Namespace) -> int:
    """Runs until SIGINT/SIGTERM."""
    from gitsync import logsetup as logs
    from gitsync.compose import build_daemon

    settings = _settings_with_sources(args)
    if settings is None:
        return 2
    logs.configure(settings, args.log_level)
    build_daemon(settings, load_registry()).run()
    return 0


def run_sync(args: argparse.Namespace) -> int:
    """One fetch + apply of every configured source; prints the plan applied. Exit 0, 1 invalid, 3 fetch failed."""
    settings = _settings_with_sources(args)
    if settings is None:
        return 2
    data_folder(settings)  # the git caches go there
    registry = load_registry()
    store = open_store(settings)
    try:
        results = [_sync_one(store, settings, registry, source, args.format) for source in settings.sources]
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps([_result_json(r) for r in results], indent=2))
    return max(r.exit_code for r in results)


def _sync_one(store: Store, settings: Settings, registry: Registry, source: SourceConfig, fmt: str) -> SyncResult:
    from gitsync.sync.apply import sync_source
    from gitsync.sync.render import render_text

    result = sync_source(store, source, settings.data_path, registry, public_url=settings.http.public_url)
    if fmt == "text":
        header = f"{source.name}: {result.outcome}"
        if result.commit:
            header += f" {result.commit[:12]}"
        print(header + (f": {result.summary}" if result.summary else ""))
        for warning in result.warnings:
            print(f"  warning: {warning}")
        plan = result.plan
        if result.outcome == "applied" and plan is not None and (not plan.empty or plan.notes):
            print(render_text(plan).rstrip())
        elif plan is not None:  # not applied: the errors say why; a note says what the plan was made from
            for note in plan.notes:
                print(f"  note: {note}")
        for error in result.errors:
            print(f"  {error}")
    return result


def _result_json(result: SyncResult) -> dict[str, Any]:
    return {
        "source": result.source,
        "outcome": result.outcome,
        "commit": result.commit,
        "previous": result.previous,
        "summary": result.summary,
        "errors": result.errors,
        "warnings": result.warnings,
        "plan": result.plan.as_dict() if result.plan is not None else None,
    }


# -- read commands ------------------------------------------------------------------------------------------------


def run_flows(args: argparse.Namespace) -> int:
    rows = _read(args, flows.list_flows)
    for row in rows:
        row["disabled"] = bool(row["disabled"])
    return _print(args, rows, ["uid", "revision", "commit", "path", "disabled"])


def run_history(args: argparse.Namespace) -> int:
    """An unknown flow is a usage error (exit 2): the message names it and a close uid, if there is one."""
    rows = _read(args, lambda store: flows.history(store, args.uid))
    if not rows:
        known = _read(args, flows.known_uids)
        raise UsageError(f"no flow {args.uid!r} in the state.{_did_you_mean(args.uid, known)} {_LIST_FLOWS}")
    for row in rows:
        row["deleted"] = bool(row["deleted"])
    return _print(args, rows, ["revision", "commit", "author", "applied_at", "message", "deleted"])


_LIST_FLOWS = "`gitsync flows` lists the flows, each as NAMESPACE.ID."


def _did_you_mean(wanted: str, known: list[str]) -> str:
    close = difflib.get_close_matches(wanted, known, n=3, cutoff=0.75)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def run_syncs(args: argparse.Namespace) -> int:
    """The syncs, newest first; `gitsync syncs ID` shows one with every error and warning in full."""
    if args.id is not None:
        return _show_sync(args)
    rows = _read(args, lambda store: syncs.list_syncs(store, args.limit))
    columns = ["id", "source", "commit", "outcome", "started_at", "summary"]
    return _print(args, rows, columns, shown={"summary": _sync_summary})


def _sync_summary(row: dict[str, Any]) -> str:
    """The summary cell: the first error (shortened), and the command that shows the rest."""
    errors, warnings = row["errors"], row["warnings"]
    more = f"gitsync syncs {row['id']}"
    if errors:
        first = _error_text(errors[0])
        if len(errors) > 1:
            return f"{_shorten(first)} (+{len(errors) - 1} more: {more})"
        return first if len(first) <= _CELL else f"{_shorten(first)} (in full: {more})"
    summary = str(row["summary"] or "").replace("\n", " ")
    if warnings:
        return f"{_shorten(summary)} ({len(warnings)} warning{'s' if len(warnings) > 1 else ''}: {more})"
    return summary if len(summary) <= _CELL else f"{_shorten(summary)} (in full: {more})"


def _show_sync(args: argparse.Namespace) -> int:
    row = _read(args, lambda store: [r for r in [syncs.get_sync(store, args.id)] if r is not None])
    if not row:
        raise UsageError(f"no sync {args.id} in the state; `gitsync syncs` lists them, newest first")
    sync = row[0]
    if args.format == "json":
        print(json.dumps(sync, indent=2, default=str))
        return 0
    print(f"sync {sync['id']}")
    for key in ("source", "outcome", "commit", "previous_commit", "started_at", "ended_at", "summary"):
        print(f"{key}: {sync[key] if sync[key] not in (None, '') else '-'}")
    for name in ("errors", "warnings"):
        items = sync[name]
        if items:
            print(f"{name} ({len(items)}):")
            print("\n".join(f"  {_error_text(item)}" for item in items))
    return 0


def _error_text(error: Any) -> str:
    """A stored error or warning as `file:line:column: …` when it is located, else its message."""
    if not isinstance(error, dict):
        return str(error)
    if error.get("file"):
        severity: Severity = "warning" if error.get("severity") == "warning" else "error"
        problem = Problem(
            error["file"],
            error.get("line"),
            error.get("column"),
            str(error.get("message", "")),
            severity,
            error.get("flow"),
            error.get("where") or "",
        )
        return problem.format()
    return str(error.get("message", error))


def run_triggers(args: argparse.Namespace) -> int:
    rows = _read(args, triggers.list_triggers)
    now = datetime.now(UTC)
    for row in rows:
        if not row["next_fire"]:
            row["next_fire"] = _next_fire(row, now)
    return _print(args, rows, ["uid", "type", "cron", "timezone", "next_fire", "paused", "disabled"])


def _next_fire(row: dict[str, Any], now: datetime) -> str | None:
    """When the daemon has not stored one yet, the next fire time computed from the cron."""
    if not row["cron"] or row["disabled"] or row["paused"] or row["flow_disabled"]:
        return None
    try:
        fire = parse_cron(row["cron"], row["with_seconds"]).next_fire(now, parse_timezone(row["timezone"] or "UTC"))
    except (CronError, ValueError):
        return None
    return fire.isoformat() if fire else None


def _read(args: argparse.Namespace, query: Callable[[Store], Iterable[T]]) -> list[T]:
    settings = settings_from_args(args)
    if settings.db != ":memory:" and not Path(settings.db).exists():
        raise GitSyncError(f"no state database at {settings.db} (run `gitsync sync` first, or pass --db)")
    store = open_store(settings)
    try:
        return list(query(store))
    finally:
        store.close()


def _print(
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    columns: list[str],
    shown: Mapping[str, Callable[[dict[str, Any]], str]] | None = None,
) -> int:
    """The rows as JSON or a table; a column in `shown` is written by its function (not cut to a cell's width)."""
    if args.format == "json":
        print(json.dumps(rows, indent=2, default=str))
        return 0
    print_table(rows, columns, shown)
    return 0


def print_table(
    rows: list[dict[str, Any]],
    columns: list[str],
    shown: Mapping[str, Callable[[dict[str, Any]], str]] | None = None,
) -> None:
    """The rows' `columns` as text: a header row (the names upper-cased), values aligned; "(none)" for no row.
    A column in `shown` is written by its function."""
    if not rows:
        print("(none)")
        return
    shown = shown or {}
    table = [[shown[c](row) if c in shown else _cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for line in table:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).replace("\n", " ")
    if len(text) == 40 and all(c in "0123456789abcdef" for c in text):
        return text[:12]
    return _shorten(text)


_CELL = 60
"""The widest a table cell is before it is cut (with …)."""


def _shorten(text: str) -> str:
    return text if len(text) <= _CELL else text[: _CELL - 1] + "…"
