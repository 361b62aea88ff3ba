"""`WorkingDirectory`: run child tasks sharing one local directory."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from plugins.core.namespace import load_namespace_files
from plugins.values import InputFiles, NamespaceFiles, Options, StrList
from runner.api import Storage, TaskFailed
from runner.engine.context import FlowableContext, Outcome, Scope
from runner.engine.records import TaskRunRecord
from runner.plugin import FlowableTask, TaskList
from runner.storage import contained
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
    replayed_whole: ClassVar[bool] = True  # its tasks share the folder: a replay runs it again whole
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.core.tasks.flows.WorkingDirectory",
        "io.kestra.core.tasks.flows.Worker",
    )
    inert: ClassVar[dict[str, str]] = {
        **FlowableTask.inert,
        "cache": "the working directory cache is not implemented; files are rebuilt each run",
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

    def decide(self, ctx: FlowableContext, scope: Scope, record: TaskRunRecord) -> Outcome:
        """Its tasks share one folder: inputFiles are written before them, outputFiles are stored after."""
        workdir = ctx.working_directory(record)
        variables = ctx.variables(self, scope, record)
        if self.namespaceFiles is not None:
            options = ctx.render(self.namespaceFiles.model_dump(exclude_none=True), variables)
            namespace = str(variables["flow"]["namespace"])
            load_namespace_files(options, ctx.namespace_files, workdir, namespace, lambda message: None)
        for name, content in (ctx.render(self.inputFiles or {}, variables) or {}).items():
            _write_input(ctx.storage, workdir, name, content)
        state = ctx.run_list(self.tasks, scope.child(record.id, self.id, workdir=workdir))
        outputs: dict[str, Any] = {}
        if self.outputFiles:
            stored = {}
            for pattern in ctx.render(list(self.outputFiles), variables):
                for path in sorted(workdir.rglob("*")):
                    relative = str(path.relative_to(workdir))
                    if (path.is_file() or path.is_symlink()) and fnmatch.fnmatch(relative, pattern):
                        contained(path, workdir, "output file")  # a link out of the folder fails the task
                        if path.is_file():
                            stored[relative] = ctx.storage.put(path, relative)
            outputs["outputFiles"] = stored
        return state, outputs


def _write_input(storage: Storage, workdir: Path, name: str, content: Any) -> None:
    target = (workdir / name).resolve()
    if workdir.resolve() not in target.parents:
        raise TaskFailed(f"input file {name!r} would be written outside the working directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str) and content.startswith("kestra:///"):
        target.write_bytes(storage.path(content).read_bytes())
    else:
        target.write_text(content if isinstance(content, str) else json.dumps(content))
