"""Files in and out of a task's working directory: `inputFiles` before a run, `outputFiles` globs after it, and
local copies of the `kestra://` files a script's commands name (`LocalCopies`, as Kestra's ScriptService does).

Also the small coercions every runnable task needs, because a rendered dynamic property may still be a string
(`"true"`, `"3"`, a JSON list or map).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from runner.api import RunContext, TaskFailed
from runner.storage import contained

STORAGE_SCHEME = "kestra://"
STORAGE_URI = re.compile(r"kestra://[-a-zA-Z0-9%._+~#=/]*")
"""A storage URI inside a command (Kestra's pattern: the characters a URI of a stored file may hold)."""
COPIES_FOLDER = ".kestra-files"


def as_bool(value: Any, default: bool = False) -> bool:
    """A rendered boolean property: a bool, or a string such as "true" / "false"."""
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def as_int(value: Any, default: int) -> int:
    if value is None or value == "":
        return default
    return int(value)


def as_list(value: Any) -> list[str]:
    """A rendered list property: a list, a JSON list in a string, or one string (a one-item list)."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                return [value]
            return [str(item) for item in parsed]
        return [value]
    return [str(item) for item in value]


def as_map(value: Any, what: str) -> dict[str, Any]:
    """A rendered map property: a dict, or a JSON object in a string."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise TaskFailed(f"{what} must be a map (name -> value) or a JSON object: {exc}") from exc
        if isinstance(parsed, dict):
            return parsed
    raise TaskFailed(f"{what} must be a map (name -> value), not {type(value).__name__}")


def inside(root: Path, name: str, what: str) -> Path:
    """`root / name`, refusing a name that leaves `root` (absolute, or with `..`)."""
    target = (root / name).resolve()
    base = root.resolve()
    if target != base and base not in target.parents:
        raise TaskFailed(f"{what} {name!r} is outside the working directory")
    return target


def write_input_files(ctx: RunContext, files: Any, what: str = "inputFiles") -> list[Path]:
    """Create each file of `files` (name -> inline content, or a kestra:/// URI copied from storage)."""
    written = []
    for name, content in as_map(files, what).items():
        target = inside(ctx.workdir, str(name), what)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = "" if content is None else str(content)
        if STORAGE_URI.fullmatch(text.strip()):
            target.write_bytes(ctx.storage.path(text.strip()).read_bytes())
        else:
            target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def store_output_files(ctx: RunContext, patterns: Any, exclude: set[Path] | None = None) -> dict[str, str]:
    """Store every file matching the globs (relative to the working directory); return {relative name: uri}.

    A matched link is followed only when its real path stays in the working directory; one that leads out
    (a link to /etc/passwd left by the task or its container) fails the task (`runner.storage.contained`).
    """
    stored: dict[str, str] = {}
    skip = {path.resolve() for path in exclude or set()}
    for pattern in as_list(patterns):
        for path in sorted(_glob(ctx.workdir, pattern)):
            if not (path.is_file() or path.is_symlink()):
                continue
            if contained(path, ctx.workdir, "output file") in skip or not path.is_file():
                continue
            name = path.relative_to(ctx.workdir).as_posix()
            if name not in stored:
                stored[name] = ctx.storage.put(path, name)
    return stored


def _glob(root: Path, pattern: str) -> list[Path]:
    pattern = pattern.strip()
    if not pattern:
        return []
    if Path(pattern).is_absolute():
        raise TaskFailed(f"outputFiles pattern {pattern!r} must be relative to the working directory")
    return list(root.glob(pattern))


class LocalCopies:
    """The `kestra://` URIs in a script's commands replaced by the paths of local copies of their files.

    Each file is copied once into `<workdir>/.kestra-files/<digest>/<its name>` and the URI becomes that path as
    the process sees it (`visible_root` is the working directory, or its mount point in a container). A URI
    that names no file this execution may read fails the task before anything runs. `remove()` deletes the
    copies after the run; they are never output files.
    """

    def __init__(self, ctx: RunContext, visible_root: Path | PurePosixPath) -> None:
        self.ctx = ctx
        self.visible_root = visible_root
        self.folder = ctx.workdir / COPIES_FOLDER
        self.paths: set[Path] = set()

    def replace(self, text: str) -> str:
        return STORAGE_URI.sub(lambda match: self._copy(match.group()), text) if STORAGE_SCHEME in text else text

    def _copy(self, uri: str) -> str:
        name = PurePosixPath(uri).name or "file"
        relative = PurePosixPath(COPIES_FOLDER, hashlib.sha256(uri.encode()).hexdigest()[:16], name)
        target = self.ctx.workdir / relative
        if target not in self.paths:
            try:
                source = self.ctx.storage.path(uri)
            except TaskFailed as exc:
                raise TaskFailed(f"{exc.message} (it is named in the task's commands or script)") from None
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            self.paths.add(target)
        return str(self.visible_root / relative)

    def remove(self) -> None:
        if self.paths:
            shutil.rmtree(self.folder, ignore_errors=True)
