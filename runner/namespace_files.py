"""Namespace files as a task sees them: one commit's files per namespace, read through `runner.api.NamespaceFiles`.

The control plane implements the protocol over its git cache (`gitsync.git.namespace_files`), bound to the commit
of the execution's flow revision, so an execution always sees the files of its own revision. Selection (Kestra's
`include`/`exclude` globs) and the copy into a working directory are here, shared by script tasks and the
namespace tasks.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from runner.api import NamespaceFiles, TaskFailed


@functools.lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A Kestra glob (`*` within a folder, `**` across folders, `?` one character) as a regular expression.

    A pattern is relative to the namespace's folder; a leading '/' is dropped."""
    text = pattern.strip().lstrip("/")
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif text.startswith("**", i):
            out.append(".*")
            i += 2
        elif text[i] == "*":
            out.append("[^/]*")
            i += 1
        elif text[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(text[i]))
            i += 1
    return re.compile("".join(out))


def matches(path: str, pattern: str) -> bool:
    """Whether a namespace file's path matches a glob: the whole path, or (for a pattern without '/') its name
    in any folder, as `*.sql` finds `queries/a.sql`."""
    regex = _glob_regex(pattern)
    if regex.fullmatch(path):
        return True
    return "/" not in pattern.strip().lstrip("/") and regex.fullmatch(path.rsplit("/", 1)[-1]) is not None


def select(paths: Iterable[str], include: Sequence[str] = (), exclude: Sequence[str] = ()) -> list[str]:
    """The paths some `include` glob matches (every one when there is none) and no `exclude` glob matches."""
    return sorted(
        path
        for path in paths
        if (not include or any(matches(path, p) for p in include)) and not any(matches(path, p) for p in exclude)
    )


def target_in(folder: Path, relative: str) -> Path:
    """`folder / relative`, refused when it would land outside the folder."""
    target = (folder / relative).resolve()
    if folder.resolve() not in target.parents:
        raise TaskFailed(f"namespace file {relative!r} would be written outside the working directory")
    return target


def copy_into(
    files: NamespaceFiles,
    workdir: Path,
    namespaces: Sequence[str],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    if_exists: str = "OVERWRITE",
    folder_per_namespace: bool = False,
    warn: object = None,
) -> list[str]:
    """Copy the selected files of each namespace into `workdir` (Kestra's `namespaceFiles`); the paths written.

    `if_exists` is Kestra's: OVERWRITE (the later namespace wins), FAIL, WARN (keep the first, call `warn`),
    IGNORE (keep the first)."""
    written: list[str] = []
    for namespace in namespaces:
        for path in select(files.paths(namespace), include, exclude):
            relative = f"{namespace}/{path}" if folder_per_namespace else path
            target = target_in(workdir, relative)
            if target.exists() and if_exists != "OVERWRITE":
                if if_exists == "FAIL":
                    raise TaskFailed(
                        f"namespace file {relative!r} already exists in the working directory "
                        "(namespaceFiles.ifExists is FAIL)"
                    )
                if if_exists == "WARN" and callable(warn):
                    warn(f"namespace file {relative!r} already exists in the working directory; kept the first")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(files.read(namespace, path))
            written.append(relative)
    return written


def read_text(files: NamespaceFiles, namespace: str, path: str) -> str:
    """A namespace file as text (`read()` in expressions); a clear error when it is not UTF-8."""
    data = files.read(namespace, path.lstrip("/"))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise TaskFailed(
            f"read({path!r}): the namespace file is not UTF-8 text ({files.describe(namespace)}); copy it into "
            "the working directory with namespaceFiles instead"
        ) from None
