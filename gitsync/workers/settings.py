"""The `celery:` block of the configuration. Its URLs are named by environment variables, like every secret."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gitsync.errors import ConfigError


class CeleryConfig(BaseModel):
    """How the control plane and `gitsync worker` reach Redis, and how much they keep in flight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    broker_url_env: str = "GITSYNC_BROKER_URL"
    """The environment variable holding the broker's URL (`redis://host:6379/0`)."""
    result_backend_env: str | None = None
    """The environment variable holding the URL of the Redis that holds claims, results, log batches and files
    in transit; unset or empty: the broker's."""
    default_queue: str = "gitsync"
    """The queue of tasks without `workerGroup.key`."""
    max_in_flight: int = Field(default=200, ge=1)
    """The most task runs sent to workers and not finished; more wait in the control plane."""
    max_file_mb: float = Field(default=64.0, gt=0)
    """The largest input or output file that travels through Redis; a larger one fails the task saying so."""
    visibility_timeout: float = Field(default=3600.0, ge=1)
    """Seconds after which a message a worker took but never acknowledged is delivered again."""
    claim_seconds: float = Field(default=10.0, ge=0.5)
    """How long a task run's claim lives without its worker renewing it (every quarter of it): a worker silent
    that long is lost, and its task run is FAILED (then retried by its `retry`)."""

    @field_validator("broker_url_env", "result_backend_env")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("_", "").isalnum():
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    def broker_url(self, environ: Mapping[str, str] | None = None) -> str:
        environ = os.environ if environ is None else environ
        url = environ.get(self.broker_url_env, "").strip()
        if not url:
            raise ConfigError(
                f"executor: celery needs the broker's URL in the environment variable {self.broker_url_env} "
                "(celery.broker_url_env), e.g. redis://127.0.0.1:6379/0"
            )
        if not url.startswith(("redis://", "rediss://")):
            raise ConfigError(f"{self.broker_url_env}: the broker must be Redis (redis:// or rediss://)")
        return url

    def store_url(self, environ: Mapping[str, str] | None = None) -> str:
        """The Redis of gitsync's own keys (claims, results, logs, files): the result backend's, else the broker."""
        environ = os.environ if environ is None else environ
        if self.result_backend_env:
            url = environ.get(self.result_backend_env, "").strip()
            if url:
                if not url.startswith(("redis://", "rediss://")):
                    raise ConfigError(f"{self.result_backend_env}: the result backend must be Redis")
                return url
        return self.broker_url(environ)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)
