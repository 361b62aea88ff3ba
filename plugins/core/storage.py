"""Execution storage tasks: `LocalFiles` (deprecated) and `PurgeCurrentExecutionFiles`."""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from plugins.core._props import as_map, as_str_list
from plugins.values import InputFiles, StrList
from runner.api import RunContext, TaskFailed
from runner.plugin import Task

STORAGE_SCHEME = "kestra://"


class LocalFiles(Task):
    """Deprecated (use WorkingDirectory inputFiles/outputFiles): create local files, collect output files."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.storage.LocalFiles"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.storages.LocalFiles",)

    inputs: InputFiles | None = None
    """File name -> content (or URI) of the files to create."""
    outputs: StrList | None = None
    """Glob patterns of the files to send to storage."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        for name, content in as_map(self.inputs, "inputs").items():
            write_input_file(ctx, name, content)
        uris = {}
        for path in match_output_files(ctx.workdir, as_str_list(self.outputs, "outputs")):
            name = path.relative_to(ctx.workdir).as_posix()
            uris[name] = ctx.storage.put(path, name)
        return {"uris": uris}


def _inside(workdir: Path, name: str, what: str) -> Path:
    relative = PurePosixPath(name)
    if not name or relative.is_absolute() or ".." in relative.parts or "\\" in name:
        raise TaskFailed(f"{what} {name!r} is refused: it must be a relative path inside the working directory")
    return workdir / relative


def write_input_file(ctx: RunContext, name: str, content: Any) -> Path:
    """Create `name` in the working directory from inline text or from a stored file's URI."""
    target = _inside(ctx.workdir, name, "input file")
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str) and content.strip().startswith(STORAGE_SCHEME):
        shutil.copyfile(ctx.storage.path(content.strip()), target)
    else:
        target.write_text("" if content is None else str(content), encoding="utf-8")
    return target


def match_output_files(workdir: Path, patterns: list[str]) -> list[Path]:
    """Files of the working directory matching any glob (`**` crosses folders), sorted, each once."""
    found: set[Path] = set()
    for pattern in patterns:
        _inside(workdir, pattern, "output pattern")
        globs = [pattern, f"{pattern}/*"] if pattern.endswith("**") else [pattern]  # Path.glob("a/**") lists folders
        for glob in globs:
            found.update(path for path in workdir.glob(glob) if path.is_file())
    return sorted(found)


class PurgeCurrentExecutionFiles(Task):
    """Delete every file the current execution stored."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.core.tasks.storages.PurgeExecution",
        "io.kestra.plugin.core.storage.PurgeExecution",
    )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        listing = getattr(ctx.storage, "uris", None)
        uris = listing() if callable(listing) else None
        count = ctx.storage.delete_all()
        ctx.logger.info(f"Purged {count} file(s) of execution {ctx.execution_id}")
        return {"count": count} if uris is None else {"uris": uris, "count": count}
