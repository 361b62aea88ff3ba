"""Execution storage tasks: `LocalFiles` (deprecated) and `PurgeCurrentExecutionFiles`."""

from __future__ import annotations

from typing import ClassVar

from plugins.values import InputFiles, StrList
from runner.plugin import Task


class LocalFiles(Task):
    """Deprecated (use WorkingDirectory inputFiles/outputFiles): create local files, collect output files."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.storage.LocalFiles"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.storages.LocalFiles",)

    inputs: InputFiles | None = None
    """File name -> content (or URI) of the files to create."""
    outputs: StrList | None = None
    """Glob patterns of the files to send to storage."""


class PurgeCurrentExecutionFiles(Task):
    """Delete every file the current execution stored."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.core.tasks.storages.PurgeExecution",
        "io.kestra.plugin.core.storage.PurgeExecution",
    )
