"""`WorkingDirectory`: run child tasks sharing one local directory."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from plugins.values import InputFiles, NamespaceFiles, Options, StrList
from runner.plugin import FlowableTask, TaskList
from runner.types import Duration


class Cache(Options):
    """Files kept between executions."""

    patterns: list[str]
    """Glob patterns of the files to cache."""
    ttl: Duration | None = None
    """How long the cache stays valid."""


class WorkingDirectory(FlowableTask):
    """Run the child tasks sequentially in one shared working directory."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.flow.WorkingDirectory"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.core.tasks.flows.WorkingDirectory",
        "io.kestra.core.tasks.flows.Worker",
    )
    inert: ClassVar[dict[str, str]] = {
        **FlowableTask.inert,
        "cache": "the working directory cache is not implemented; files are rebuilt each run",
        "namespaceFiles": "gitsync has no namespace file store",
    }

    tasks: TaskList = Field(min_length=1)
    """The child tasks."""
    inputFiles: InputFiles | None = None
    """Files created in the directory before the tasks run: name -> content or URI."""
    outputFiles: StrList | None = None
    """Glob patterns of files sent to storage after the tasks (the `outputFiles` output)."""
    namespaceFiles: NamespaceFiles | None = None
    """Namespace files copied into the directory."""
    cache: Cache | None = None
    """Files cached between executions."""
