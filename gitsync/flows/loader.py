"""Flow files to validated flows, with every problem located by file, line and column.

`load_flow_source` handles one file's bytes (from disk or from a git blob); `load_flow_sources`
handles a whole set and adds the cross-file rule (one file per flow uid).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gitsync.flows.yaml_source import SourceError, decode, locate, parse
from runner.flow import Flow
from runner.registry import Registry
from runner.validate.validator import Issue, validate_flow

FLOW_SUFFIXES = (".yaml", ".yml")
Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a warning) in one file."""

    path: str
    line: int | None
    column: int | None
    message: str
    severity: Severity = "error"
    flow: str | None = None
    where: str = ""
    """Path inside the flow, e.g. tasks[2].commands."""

    def format(self) -> str:
        place = self.path
        if self.line is not None:
            place += f":{self.line}"
            if self.column is not None:
                place += f":{self.column}"
        parts = [place]
        if self.severity == "warning":
            parts.append("warning")
        if self.flow:
            parts.append(f"flow '{self.flow}'")
        if self.where:
            parts.append(self.where)
        parts.append(self.message)
        return ": ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "flow": self.flow,
            "where": self.where,
            "message": self.message,
        }


@dataclass
class LoadedFile:
    path: str
    flow: Flow | None
    problems: list[Problem] = field(default_factory=list)
    text: str | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return self.flow is not None and not self.errors


@dataclass
class LoadResult:
    files: list[LoadedFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    """Problems that are not about one file's content (skipped symlinks, duplicate uids, unreadable paths)."""

    @property
    def all_problems(self) -> list[Problem]:
        out = list(self.problems)
        for loaded in self.files:
            out.extend(loaded.problems)
        return sorted(out, key=lambda p: (p.path, p.line or 0, p.column or 0))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.all_problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def flows(self) -> dict[str, Flow]:
        return {f.flow.uid: f.flow for f in self.files if f.flow is not None}


def format_loc(loc: tuple[str | int, ...]) -> str:
    """("tasks", 2, "commands") -> "tasks[2].commands"."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def load_flow_source(path: str, data: bytes, registry: Registry, namespace_prefix: str | None = None) -> LoadedFile:
    """Read, parse and validate one flow file; never raises for bad content.

    Every problem of the file is reported (not just the first), sorted by line and column.
    """
    try:
        text = decode(data)
        parsed = parse(text)
    except SourceError as exc:
        return LoadedFile(path, None, [Problem(path, exc.line, exc.column, exc.message)])
    problems = [
        Problem(path, d.line, d.column, f"duplicate key '{d.key}' (first at line {d.first_line}; keep one of them)")
        for d in parsed.duplicates
    ]
    try:
        result = validate_flow(parsed.data, registry, namespace_prefix)
    except RecursionError:
        problems.append(Problem(path, 1, 1, "the flow is nested too deeply to validate"))
        return LoadedFile(path, None, problems, text)
    uid = _uid(parsed.data)
    for issue in result.issues:
        problems.append(_problem(path, parsed.root, issue, uid))
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    flow = result.flow if not any(p.severity == "error" for p in problems) else None
    return LoadedFile(path, flow, problems, text)


def _uid(data: Any) -> str | None:
    if isinstance(data, dict) and isinstance(data.get("namespace"), str) and isinstance(data.get("id"), str):
        return f"{data['namespace']}.{data['id']}"
    return None


def _problem(path: str, root: Any, issue: Issue, uid: str | None) -> Problem:
    position = locate(root, issue.loc, issue.at_key)
    line, column = position if position else (1, 1)  # an empty document: the problem is the whole file
    message = issue.message
    if issue.related is not None:
        related = locate(root, issue.related, True)
        if related == position:  # one YAML node reached twice: `- *anchor` repeats a block
            message += " (the block is repeated through a YAML alias; give each copy its own id)"
        elif related:
            message += f" (first defined at line {related[0]})"
    return Problem(path, line, column, message, issue.severity, uid, format_loc(issue.loc))


def load_flow_sources(
    items: Iterable[tuple[str, bytes]], registry: Registry, namespace_prefix: str | None = None
) -> LoadResult:
    """Load many files; a flow uid defined in two files is an error on the later one."""
    result = LoadResult()
    with batch_allocation():
        for path, data in items:
            result.files.append(load_flow_source(path, data, registry, namespace_prefix))
    check_unique_uids(result)
    return result


@contextmanager
def batch_allocation() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch of flows is loaded.

    Loading allocates many small acyclic objects that all stay alive; the collector's full passes would only
    rescan them again and again (about 15% of the time of validating 10,000 flows). Reference counting
    still frees everything that is dropped.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def check_unique_uids(result: LoadResult) -> None:
    first: dict[str, LoadedFile] = {}
    for loaded in sorted(result.files, key=lambda f: f.path):
        if loaded.flow is None:
            continue
        uid = loaded.flow.uid
        if uid in first:
            loaded.problems.append(duplicate_uid(loaded.path, loaded.text, uid, first[uid].path))
            loaded.flow = None
        else:
            first[uid] = loaded


def duplicate_uid(path: str, text: str | None, uid: str, other_path: str) -> Problem:
    """The error on the file `path` (its YAML `text`), whose flow `uid` the file `other_path` defines too."""
    message = f"flow '{uid}' is also defined in {other_path} (each flow lives in exactly one file)"
    line, column = id_position(text)
    return Problem(path, line, column, message, flow=uid)


def id_position(text: str | None) -> tuple[int | None, int | None]:
    """Where the flow's `id` is written in `text` (None, None when it cannot be told)."""
    try:
        position = locate(parse(text or "").root, ("id",))
    except SourceError:
        position = None
    return position if position else (None, None)


NAMESPACE_FILES = "_files"
"""The folder of namespace files beside the flows (a source's `namespace_files` by default): not flows."""


def iter_flow_files(root: Path) -> Iterator[tuple[Path, Problem | None]]:
    """Flow files below `root` (sorted), skipping hidden folders and the namespace files folder (`_files/` at the
    top); a symlink yields a warning instead."""
    if root.is_file() or root.is_symlink():
        yield (root, _symlink_warning(root, root.parent)) if root.is_symlink() else (root, None)
        return
    for dirpath, dirnames, filenames in os.walk(root):
        top = Path(dirpath) == root
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not (top and d == NAMESPACE_FILES))
        base = Path(dirpath)
        for name in list(dirnames):
            if (base / name).is_symlink():
                dirnames.remove(name)
                yield base / name, _symlink_warning(base / name, root)
        for name in sorted(filenames):
            if name.endswith(FLOW_SUFFIXES):
                path = base / name
                yield path, _symlink_warning(path, root) if path.is_symlink() else None


def _symlink_warning(path: Path, root: Path) -> Problem:
    shown = _display_path(path, root)
    return Problem(
        shown, None, None, "symbolic link ignored (flows must be regular files in the repository)", "warning"
    )


def _display_path(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_paths(paths: Iterable[str | Path], registry: Registry, namespace_prefix: str | None = None) -> LoadResult:
    """Validate files and folders on disk (what `gitsync validate` reads)."""
    result = LoadResult()
    with batch_allocation():
        _load_paths_into(result, paths, registry, namespace_prefix)
    check_unique_uids(result)
    return result


def _load_paths_into(
    result: LoadResult, paths: Iterable[str | Path], registry: Registry, namespace_prefix: str | None
) -> None:
    for given in paths:
        root = Path(given)
        if not root.exists() and not root.is_symlink():
            result.problems.append(Problem(str(given), None, None, "no such file or folder"))
            continue
        for path, warning in iter_flow_files(root):
            if warning is not None:
                result.problems.append(warning)
                continue
            shown = _display_path(path, root)
            try:
                with path.open("rb") as handle:
                    data = handle.read(_READ_LIMIT)
            except OSError as exc:
                result.problems.append(Problem(shown, None, None, f"cannot read: {exc.strerror}"))
                continue
            result.files.append(load_flow_source(shown, data, registry, namespace_prefix))


_READ_LIMIT = 1024 * 1024 + 1  # one byte past the limit is enough to refuse an oversized file
