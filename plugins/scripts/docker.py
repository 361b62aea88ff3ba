"""Docker option objects shared by the Docker task runner and the deprecated `docker:` / `dockerOptions:`."""

from __future__ import annotations

from typing import Any, Literal

from plugins.values import Options
from runner.types import Dyn

PullPolicy = Dyn[Literal["IF_NOT_PRESENT", "ALWAYS", "NEVER"]]


class Credentials(Options):
    """Credentials for a private registry."""

    registry: str | None = None
    username: str | None = None
    password: str | None = None
    registryToken: str | None = None
    identityToken: str | None = None
    auth: str | None = None


class Cpu(Options):
    cpus: Dyn[float] | None = None
    """Maximum number of CPUs."""


class Memory(Options):
    memory: str | None = None
    memorySwap: str | None = None
    memorySwappiness: str | None = None
    memoryReservation: str | None = None
    kernelMemory: str | None = None
    oomKillDisable: Dyn[bool] | None = None


class DeviceRequest(Options):
    driver: str | None = None
    count: Dyn[int] | None = None
    deviceIds: list[str] | None = None
    capabilities: list[list[str]] | None = None
    options: dict[str, str] | None = None


class _DockerCommon(Options):
    host: str | None = None
    """Docker API URI."""
    config: str | dict[str, Any] | None = None
    """Docker config.json content (registry credentials)."""
    credentials: Credentials | None = None
    """Credentials for a private registry."""
    user: str | None = None
    """User the container runs as."""
    entryPoint: list[str] | None = None
    """Entrypoint override."""
    extraHosts: list[str] | None = None
    """Extra host:ip mappings."""
    networkMode: str | None = None
    """Network mode (host, none, …)."""
    volumes: list[str] | None = None
    """host:container volume mounts."""
    pullPolicy: PullPolicy | None = None
    """IF_NOT_PRESENT, ALWAYS or NEVER."""
    deviceRequests: list[DeviceRequest] | None = None
    """Device requests (GPUs …)."""
    cpu: Cpu | None = None
    """CPU limits."""
    memory: Memory | None = None
    """Memory limits."""
    shmSize: str | None = None
    """Size of /dev/shm."""
    privileged: Dyn[bool] | None = None
    """Give extended privileges to the container."""


class DockerOptions(_DockerCommon):
    """The deprecated `docker:` property of script tasks (use `taskRunner` + `containerImage`)."""

    image: str | None = None
    """Image to run (the task's default image when unset)."""
    configPath: str | None = None
    dockerHost: str | None = None
    """Deprecated name of `host`."""
    dockerConfig: str | None = None
    """Deprecated name of `config`."""


class LegacyDockerOptions(DockerOptions):
    """`dockerOptions:` of the pre-0.11 script tasks and old dbt tasks."""

    pullImage: bool = True
