"""Task runners (`taskRunner.type`): where a script task's commands run."""

from __future__ import annotations

from typing import ClassVar, Literal

from plugins.scripts.docker import _DockerCommon
from runner.plugin import TaskRunner
from runner.types import Duration, Dyn

_LOCAL = "gitsync runs scripts as local processes; Docker options are not applied"


class Process(TaskRunner):
    """Run the commands as a process on the worker host."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.runner.Process"


class Docker(TaskRunner, _DockerCommon):
    """Run the commands in a Docker container (`containerImage` of the task)."""

    type_name: ClassVar[str] = "io.kestra.plugin.scripts.runner.docker.Docker"

    image: str | None = None
    """Hidden backward-compatibility image (the task's containerImage normally)."""
    portBindings: list[str] | None = None
    """Published ports (ip:hostPort:containerPort/protocol)."""
    fileHandlingStrategy: Dyn[Literal["VOLUME", "MOUNT"]] = "VOLUME"
    """How files reach the container: a copied volume or a mount."""
    delete: Dyn[bool] = True
    """Delete the container when it ends."""
    wait: Dyn[bool] = True
    """Wait for the container to exit."""
    killGracePeriod: Duration | None = None
    """Grace period before a killed task's container is killed."""
    resume: Dyn[bool] = True
    """Reattach to a matching container on restart."""


Docker.inert = {name: _LOCAL for name in Docker.model_fields if name != "type"}
