"""The namespace tasks (`namespace.DownloadFiles/UploadFiles/DeleteFiles`) and the `namespaceFiles` copy that
script tasks and WorkingDirectory share.

In gitsync the namespace files come from git, versioned with the flows (`_files/<namespace>/` beside them, read at
the commit of the execution's revision). Reading them works as in Kestra; writing them does not: UploadFiles and
DeleteFiles fail, saying to commit the change to git, because a file written by an execution would be lost at the
next sync and seen by no other revision.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

from plugins.values import NamespaceFiles as NamespaceFilesOptions
from plugins.values import StrList
from runner.api import NamespaceFiles, RunContext, TaskFailed
from runner.namespace_files import copy_into, select
from runner.plugin import Task
from runner.types import Dyn

NO_FILES = (
    "namespace files are read from git at the commit of the execution's flow revision, and this execution has "
    "none (a flow run from a file, not synced from a source)"
)


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def load_namespace_files(
    options: NamespaceFilesOptions | dict[str, Any] | None,
    files: NamespaceFiles | None,
    workdir: Path,
    namespace: str,
    warn: Callable[[str], None],
) -> list[str]:
    """Copy the namespace files `namespaceFiles` selects into `workdir` (nothing when it is absent or disabled);
    the paths written. The options are rendered already."""
    if options is None:
        return []
    values = options.model_dump() if isinstance(options, NamespaceFilesOptions) else dict(options)
    if not _flag(values.get("enabled"), True):
        return []
    if files is None:
        raise TaskFailed(f"namespaceFiles: {NO_FILES}")
    return copy_into(
        files,
        workdir,
        _strings(values.get("namespaces")) or [namespace],
        include=_strings(values.get("include")),
        exclude=_strings(values.get("exclude")),
        if_exists=str(values.get("ifExists") or "OVERWRITE"),
        folder_per_namespace=_flag(values.get("folderPerNamespace"), False),
        warn=warn,
    )


def _files_of(ctx: RunContext) -> NamespaceFiles:
    if ctx.namespace_files is None:
        raise TaskFailed(NO_FILES)
    return ctx.namespace_files


class DownloadFiles(Task):
    """Copy namespace files into the execution's storage (output `files`: path -> kestra:/// URI)."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.namespace.DownloadFiles"
    runs_inline: ClassVar[bool] = True

    namespace: str
    """The namespace whose files are copied."""
    files: StrList
    """Glob patterns of the files to copy (relative to the namespace's folder)."""
    destination: str = ""
    """A folder prefix for the keys of the `files` output."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        files = _files_of(ctx)
        chosen = select(files.paths(self.namespace), _strings(self.files))
        if not chosen:
            ctx.logger.warn(f"no namespace file matches {_strings(self.files)} in {files.describe(self.namespace)}")
        prefix = self.destination.strip("/")
        out: dict[str, str] = {}
        for path in chosen:
            name = f"{prefix}/{path}" if prefix else path
            out[name] = ctx.storage.put(files.read(self.namespace, path), path.rsplit("/", 1)[-1])
        ctx.logger.info(f"downloaded {len(out)} namespace file(s) from {files.describe(self.namespace)}")
        return {"files": out}


class UploadFiles(Task):
    """Kestra writes namespace files here; in gitsync they are committed to git, so this task fails saying so."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.namespace.UploadFiles"
    runs_inline: ClassVar[bool] = True

    namespace: str
    """The namespace the files would be written to."""
    files: StrList | dict[str, str] | None = None
    """The files to upload (URIs, or destination path -> URI)."""
    filesMap: Dyn[dict[str, str]] | None = None
    """Destination path -> URI of each file."""
    destination: str = "/"
    """The folder of the namespace the files would go to."""
    conflict: Dyn[Literal["OVERWRITE", "ERROR", "SKIP"]] = "OVERWRITE"
    """What to do with a file that exists already."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        folder = f"_files/{self.namespace}/{self.destination.strip('/')}".rstrip("/")
        raise TaskFailed(
            f"UploadFiles cannot write namespace files in gitsync: they come from git, versioned with the flows. "
            f"Commit the files under {folder}/ beside your flows instead; the next sync makes them the namespace "
            "files of the new revision",
            permanent=True,
        )


class DeleteFiles(Task):
    """Kestra deletes namespace files here; in gitsync they are removed in git, so this task fails saying so."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.namespace.DeleteFiles"
    runs_inline: ClassVar[bool] = True

    namespace: str
    """The namespace whose files would be deleted."""
    files: StrList
    """Glob patterns of the files to delete."""
    deleteParentFolder: Dyn[bool] = False
    """Also delete folders left empty."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        raise TaskFailed(
            f"DeleteFiles cannot delete namespace files in gitsync: they come from git, versioned with the flows. "
            f"Remove the files matching {_strings(self.files)} from _files/{self.namespace}/ in git instead; the "
            "next sync applies it",
            permanent=True,
        )
