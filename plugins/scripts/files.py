"""Files in and out of a task's working directory: `inputFiles` before a run, `outputFiles` globs after it.

Also the small coercions every runnable task needs, because a rendered dynamic property may still be a string
(`"true"`, `"3"`, a JSON list or map).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner.api import RunContext, TaskFailed
from runner.storage import contained

STORAGE_SCHEME = "kestra://"


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
        if text.startswith(STORAGE_SCHEME):
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
