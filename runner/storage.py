"""Execution files on the local disk, addressed by `kestra:///` URIs.

A file a task stores is written to `<data_dir>/executions/<execution_id>/<task_id>/<name>` and named by
`kestra:///<namespace as a path>/<flow_id>/executions/<execution_id>/<task_id>/<name>` (namespace
`company.team` is the path `company/team`). A URI maps back to a file only when it is well formed, stays
inside its execution's folder (no `..`, no absolute or empty parts), and its namespace and flow are those the
execution's files were stored under (recorded in `<execution dir>/.owner.json`), so a flow cannot read another
flow's files by writing their URI with its own namespace. Reading another execution's files is allowed within
the same namespace (Kestra's rule) and for the executions named in `readable_executions` (e.g. a subflow's).

Links. A task (or the container it runs in) may leave symbolic links in its folder; reading one back must not
copy a host file into storage. `contained(path, root)` is the rule every reader of a task's folder applies: a
link inside the folder to a file inside the folder is followed, anything whose real path leaves the folder is
refused with a TaskFailed (refused, not skipped: a task whose outputs were tampered with fails and says why).
`put` of a path applies it again as a backstop, with the task folder (`<execution dir>/work/<folder>/`, or the
execution's folder) as the root when the file lies under the data dir, and copies through descriptors opened
without following links (`O_NOFOLLOW` on every component), so a link swapped in after the check is refused too.
A path outside the data dir (a database file the flow names by an absolute path) is copied as before.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from runner.api import TaskFailed

SCHEME = "kestra:///"
OWNER_FILE = ".owner.json"


def contained(path: Path, root: Path, what: str = "file") -> Path:
    """The real path of `path`, which must lie inside the real path of `root`; TaskFailed otherwise.

    A link inside `root` to a file inside `root` is followed; a link (or a linked folder on the way) whose
    target leaves `root` is refused, as is a link loop.
    """
    try:
        base = root.resolve()
        real = path.resolve()
    except (OSError, RuntimeError) as exc:
        raise TaskFailed(f"{what} {_shown(path, root)!r} is refused: its links cannot be resolved ({exc})") from exc
    if real != base and not real.is_relative_to(base):
        raise TaskFailed(
            f"{what} {_shown(path, root)!r} is refused: it is a link (or lies under a linked folder) that points "
            f"outside the task's working directory"
        )
    return real


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _open_within(real: Path, base: Path) -> int:
    """A read descriptor of the regular file `real` (a resolved path inside the resolved `base`), opening each
    component with O_NOFOLLOW so that no link is followed, whatever changed since `real` was resolved."""
    parts = real.relative_to(base).parts
    if not parts:
        raise TaskFailed(f"{real} is a folder, not a file")
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(base, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        for part in parts[:-1]:
            child = os.open(part, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | nofollow, dir_fd=fd)
            os.close(fd)
            fd = child
        leaf = os.open(parts[-1], os.O_RDONLY | nofollow, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(leaf).st_mode):
        os.close(leaf)
        raise TaskFailed(f"{real.name!r} is not a regular file")
    return leaf


@dataclass(frozen=True)
class StoredFile:
    """The parts of a `kestra:///` URI of an execution file."""

    namespace: str
    flow_id: str
    execution_id: str
    relative: PurePosixPath
    """`<task_id>/<name>` (or any path under the execution's folder)."""


def _safe_parts(text: str, what: str) -> list[str]:
    parts = text.split("/")
    for part in parts:
        if part in ("", ".", "..") or "\\" in part or "\x00" in part:
            raise TaskFailed(f"{what} {text!r} is refused: it must be a relative path without '..' or empty parts")
    return parts


def uri_candidates(uri: str) -> list[StoredFile]:
    """The readings of a `kestra:///ns/path/flow/executions/<id>/<task>/<name>` URI; TaskFailed if none.

    A namespace part, a task id or a file name may itself be `executions`, so each place the word stands is
    a possible split; the storage keeps the one its files were recorded under.
    """
    if not isinstance(uri, str) or not uri.startswith(SCHEME):
        raise TaskFailed(f"{uri!r} is not a kestra:/// storage URI")
    parts = _safe_parts(uri[len(SCHEME) :], "storage URI")
    found = [
        StoredFile(".".join(parts[: i - 1]), parts[i - 1], parts[i + 1], PurePosixPath(*parts[i + 2 :]))
        for i, part in enumerate(parts)
        if part == "executions" and i >= 2 and len(parts) >= i + 3
    ]
    if not found:
        raise TaskFailed(f"{uri!r} is not the URI of an execution file")
    return found


def parse_uri(uri: str) -> StoredFile:
    """The first reading of a storage URI (see `uri_candidates`)."""
    return uri_candidates(uri)[0]


@dataclass
class LocalStorage:
    """`runner.api.Storage` over `<data_dir>/executions/<execution_id>/`, for one task of one execution.

    The engine builds one per execution and hands `for_task(task_id)` to each task run.
    """

    data_dir: Path
    namespace: str
    flow_id: str
    execution_id: str
    task_id: str = "_execution"
    readable_executions: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        _safe_parts(self.execution_id, "execution id")
        _safe_parts(self.task_id, "task id")
        _safe_parts(self.flow_id, "flow id")
        _safe_parts(self.namespace.replace(".", "/"), "namespace")

    def for_task(self, task_id: str) -> LocalStorage:
        """The same execution's storage, storing under `task_id` (only the task id is checked again: the rest
        was checked when this one was made)."""
        _safe_parts(task_id, "task id")
        clone = object.__new__(LocalStorage)
        clone.__dict__.update(self.__dict__, task_id=task_id)
        return clone

    @property
    def execution_dir(self) -> Path:
        return self.data_dir / "executions" / self.execution_id

    def uri(self, relative: str | PurePosixPath) -> str:
        """The URI of `<execution dir>/<relative>` (which need not exist)."""
        namespace = self.namespace.replace(".", "/")
        return f"{SCHEME}{namespace}/{self.flow_id}/executions/{self.execution_id}/{relative}"

    def put(self, source: Path | bytes, name: str) -> str:
        """Copy a file (or write bytes) as `<task_id>/<name>`; a name already taken gets a `-2`, `-3`… suffix."""
        relative = PurePosixPath(self.task_id, *_safe_parts(name, "file name"))
        target = self._unique(self.execution_dir / relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._record_owner()
        stored = target.relative_to(self.execution_dir)
        if target.parent.resolve() != self.execution_dir.resolve().joinpath(*stored.parts[:-1]):
            raise TaskFailed(f"file name {name!r} is refused: a link stands on its way in the storage folder")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(target, flags, 0o644)
        except OSError as exc:
            raise TaskFailed(f"file name {name!r} cannot be stored: {exc.strerror or exc}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(source, bytes):
                    out.write(source)
                else:
                    self._copy_in(Path(source), out)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return self.uri(target.relative_to(self.execution_dir).as_posix())

    def write_at(self, uri: str, content: bytes) -> None:
        """Write `content` as the file `uri` names in this execution (a file that went to another machine and came
        back: a Celery worker's input or output); a URI of another execution is refused."""
        mine = (self.namespace, self.flow_id, self.execution_id)
        stored = next((c for c in uri_candidates(uri) if (c.namespace, c.flow_id, c.execution_id) == mine), None)
        if stored is None:
            raise TaskFailed(f"{uri!r} is not a file of execution {self.execution_id}")
        self._record_owner()
        target = contained(self.execution_dir / stored.relative, self.execution_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.part")
        temporary.write_bytes(content)
        os.replace(temporary, target)

    def path(self, uri: str) -> Path:
        """The local file of a URI this execution may read; TaskFailed when refused or absent."""
        for stored in uri_candidates(uri):
            execution_dir = self.data_dir / "executions" / stored.execution_id
            if self._owner(execution_dir) != (stored.namespace, stored.flow_id):
                continue
            if stored.execution_id != self.execution_id and not self._may_read(stored):
                raise TaskFailed(f"{uri!r} belongs to another namespace's execution and cannot be read from here")
            target = execution_dir / stored.relative
            if target.resolve().is_relative_to(execution_dir.resolve()) and target.is_file():
                return target
        raise TaskFailed(f"{uri!r} does not name a stored file")

    def task_folder(self, source: Path) -> Path | None:
        """The folder a file under the data dir must stay in: its task folder (`<execution dir>/work/<folder>`),
        else its execution's folder, else the data dir; None for a file outside the data dir."""
        source = Path(os.path.abspath(source))
        data_dir = Path(os.path.abspath(self.data_dir))
        if not source.is_relative_to(data_dir):
            return None
        parts = source.relative_to(data_dir).parts
        if len(parts) >= 5 and parts[0] == "executions" and parts[2] == "work":
            return data_dir.joinpath(*parts[:4])
        if len(parts) >= 3 and parts[0] == "executions":
            return data_dir.joinpath(*parts[:2])
        return data_dir

    def _copy_in(self, source: Path, out: BinaryIO) -> None:
        root = self.task_folder(source)
        if root is None:
            with source.open("rb") as handle:
                shutil.copyfileobj(handle, out)
            return
        real = contained(source, root)
        try:
            fd = _open_within(real, root.resolve())
        except OSError as exc:
            raise TaskFailed(f"{_shown(source, root)!r} cannot be stored: {exc.strerror or exc}") from exc
        with os.fdopen(fd, "rb") as handle:
            shutil.copyfileobj(handle, out)

    def uris(self) -> list[str]:
        """Every file this execution stored, as URIs (sorted)."""
        return [self.uri(path.relative_to(self.execution_dir).as_posix()) for path in self._files()]

    def delete_all(self) -> int:
        """Remove every file of the execution; how many there were."""
        count = len(self._files())
        if self.execution_dir.exists():
            for child in self.execution_dir.iterdir():
                if child.name == OWNER_FILE:
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        return count

    def _files(self) -> list[Path]:
        if not self.execution_dir.exists():
            return []
        found: Iterable[Path] = self.execution_dir.rglob("*")
        return sorted(p for p in found if p.is_file() and p.name != OWNER_FILE)

    def _may_read(self, stored: StoredFile) -> bool:
        return stored.namespace == self.namespace or stored.execution_id in self.readable_executions

    def _unique(self, target: Path) -> Path:
        candidate, n = target, 1
        while os.path.lexists(candidate):
            n += 1
            candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
        return candidate

    def _record_owner(self) -> None:
        owner = self.execution_dir / OWNER_FILE
        if not owner.exists():
            self.execution_dir.mkdir(parents=True, exist_ok=True)
            owner.write_text(json.dumps({"namespace": self.namespace, "flow_id": self.flow_id}), encoding="utf-8")

    @staticmethod
    def _owner(execution_dir: Path) -> tuple[str, str] | None:
        try:
            data = json.loads((execution_dir / OWNER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data.get("namespace"), data.get("flow_id")
