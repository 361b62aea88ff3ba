"""Settings: one `gitsync.yaml` for the general case, flags for the one-source case, `GITSYNC_<KEY>` over both.

Secrets never live in the file: it names the environment variable that holds each one (`token_env`,
`webhook_secret_env`). Overlapping namespace prefixes are refused here, before anything starts.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from gitsync.errors import ConfigError
from gitsync.workers.settings import CeleryConfig
from runner.durations import parse_duration

ENV_PREFIX = "GITSYNC_"
_SHORT_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: Any) -> Any:
    """`60s`, `5m`, `1h`, a number of seconds, or ISO-8601 (`PT1M`)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _SHORT_DURATION.match(value.strip())
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
        return parse_duration(value)
    return value


Interval = Annotated[timedelta, BeforeValidator(_duration)]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatusConfig(_Config):
    provider: Literal["github", "gitea", "gitlab"]
    api_url: str | None = None
    repository: str
    """owner/name, or a GitLab project id."""
    token_env: str | None = None
    pr_comments: bool = True


def source_name_from_repo(repo: str) -> str:
    """The name of a source given without one: the last part of the repository's path (`.git` dropped), else its
    host. Credentials (`user:token@`), the port, the query (`?token=…`) and the fragment are never part of it."""
    text = repo.strip()
    if "://" in text:
        parts = urlsplit(text)
        host, path = parts.hostname or "", parts.path
    elif re.match(r"^[^/\\]+:(?!/)", text) and not re.match(r"^[A-Za-z]:[/\\]", text):  # scp form user@host:path
        host, path = text.split(":", 1)[0].rsplit("@", 1)[-1], text.split(":", 1)[1]
        path = path.split("?", 1)[0].split("#", 1)[0]
    else:
        host, path = "", text
    last = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].removesuffix(".git") or host
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in last).lstrip("._-")
    return cleaned or "default"


class SourceConfig(_Config):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    repo: str
    """A local path, file://, http(s)://, git:// or ssh:// URL."""
    branch: str | None = None
    """Default: the remote's default branch."""
    path: str = ""
    """Folder of flows inside the repository; empty for the root."""
    namespace_prefix: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    """The namespaces this source owns (the prefix and its children); None: every namespace (one source only)."""
    poll: Interval = timedelta(seconds=60)
    token_env: str | None = None
    webhook_secret_env: str | None = None
    allow_empty: bool = False
    """Allow a commit that removes every flow of the source (a wrong path must not wipe production)."""
    status: StatusConfig | None = None
    namespace_files: str = "_files"
    """Folder of the namespace files, relative to `path`: one sub-folder per namespace (`_files/company.team/`).
    Its files are never read as flows."""

    @field_validator("path")
    @classmethod
    def _normalise_path(cls, value: str) -> str:
        value = value.strip().strip("/")
        if value in (".", ""):
            return ""
        if ".." in value.split("/"):
            raise ValueError("path must stay inside the repository (no '..')")
        return value

    @field_validator("namespace_files")
    @classmethod
    def _normalise_files(cls, value: str) -> str:
        value = value.strip().strip("/")
        if value in (".", "") or ".." in value.split("/"):
            raise ValueError("namespace_files must name a folder inside the source's path (no '..', not empty)")
        return value

    def files_folder(self) -> str:
        """The repository path of the namespace files folder (`flows/_files`)."""
        return f"{self.path}/{self.namespace_files}" if self.path else self.namespace_files

    def token(self) -> str | None:
        return os.environ.get(self.token_env) if self.token_env else None

    def webhook_secret(self) -> str | None:
        return os.environ.get(self.webhook_secret_env) if self.webhook_secret_env else None


class HttpConfig(_Config):
    listen: str = "127.0.0.1:8080"
    public_url: str | None = None
    token_env: str = "GITSYNC_API_TOKEN"
    allowed_hosts: list[str] = []
    """Host header values answered besides the listen address, loopback names and public_url's host ("name" or
    "name:port"): a request naming any other host is refused (DNS rebinding)."""
    header_timeout: float = Field(default=10.0, gt=0)
    """Seconds a client has to send a request's line and headers; then the connection is closed."""
    body_timeout: float = Field(default=30.0, gt=0)
    """Seconds a client has to send a request's body; then 408 and the connection is closed."""

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"listen must be HOST:PORT, e.g. 127.0.0.1:8080 (got {value!r})")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def api_token(self) -> str | None:
        return os.environ.get(self.token_env) or None


def _names(value: Any) -> Any:
    """A list of names, or one text of names separated by commas or spaces (`GITSYNC_TASKS_ENV_ALLOW=A,B_*`)."""
    if isinstance(value, str):
        return [name for name in re.split(r"[,\s]+", value) if name]
    return value


class TasksConfig(_Config):
    env_allow: Annotated[list[str], BeforeValidator(_names)] = []
    """Environment variables of the gitsync process that task processes also get, by name or `PREFIX_*`.

    A task's environment is otherwise clean: PATH, HOME, TMPDIR, TZ, LANG and LC_*, then the task's own `env`.
    The service's credentials (the API token, host tokens, SECRET_* values) reach a task only if listed here."""

    python: str = "python3"
    """The interpreter Python script tasks are run with: a name looked up on the task's PATH (gitsync's own
    virtual environment is never on it), or an absolute path. Its site-packages are visible to the tasks; what a
    flow installs (`beforeCommands: pip install …`, `dependencies`) goes to a virtual environment made from it."""
    python_env: Literal["namespace", "task"] = "namespace"
    """Where a flow's packages go: one virtual environment per namespace, kept under `data_dir/python/` and shared
    by the namespace's flows (installed once, reused); or one per task run, in its working directory."""

    @field_validator("python")
    @classmethod
    def _interpreter(cls, value: str) -> str:
        if not value.strip() or "\0" in value:
            raise ValueError("python must name an interpreter (e.g. python3, /usr/bin/python3.12)")
        return value.strip()

    @field_validator("env_allow")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\*?", name):
                raise ValueError(f"env_allow: {name!r} is not a variable name or NAME_PREFIX* pattern")
        return value


class Settings(_Config):
    db: str = "gitsync.db"
    data_dir: str = ".gitsync"
    http: HttpConfig = HttpConfig()
    executor: Literal["local", "celery"] = "local"
    celery: CeleryConfig = CeleryConfig()
    """The Celery executor's broker, queues and limits (read when `executor: celery`)."""
    secrets_file: str | None = None
    """A YAML mapping or .env file of plain secret values for `secret('NAME')` (besides SECRET_NAME variables)."""
    docker_fallback: bool = False
    """Run a script whose task runner is Docker as a local process when no Docker engine answers."""
    workers: int = Field(default=32, ge=1)
    """How many runnable tasks the local executor runs at once."""
    tasks: TasksConfig = TasksConfig()
    lease_seconds: float = Field(default=10.0, ge=0.5, le=3600)
    """How long a process that runs executions (the daemon, `gitsync run`) may go without renewing its lease
    before another process sharing the database resolves its executions as lost. It renews every fifth of it."""
    sources: list[SourceConfig] = []

    @model_validator(mode="after")
    def _ownership(self) -> Settings:
        names = [s.name for s in self.sources]
        for name in {n for n in names if names.count(n) > 1}:
            raise ValueError(f"two sources are named {name!r}; source names must be unique")
        for i, a in enumerate(self.sources):
            for b in self.sources[i + 1 :]:
                if _overlap(a.namespace_prefix, b.namespace_prefix):
                    raise ValueError(
                        f"sources {a.name!r} ({a.namespace_prefix or 'every namespace'}) and {b.name!r} "
                        f"({b.namespace_prefix or 'every namespace'}) "
                        "own overlapping namespaces; each namespace must belong to one source"
                    )
        return self

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise ConfigError(f"no source named {name!r} (known: {', '.join(s.name for s in self.sources) or 'none'})")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    def state_flags(self) -> str:
        """` --db FILE --data-dir DIR`: what another command needs to reach this state, each flag only when its value
        is not the default, with absolute quoted paths (to paste into a shell in another folder); "" for defaults."""
        flags = ""
        for flag, name in (("--db", "db"), ("--data-dir", "data_dir")):
            value = getattr(self, name)
            if value != type(self).model_fields[name].default:
                flags += f" {flag} {shlex.quote(os.path.abspath(value))}"
        return flags


def _overlap(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return True
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def load_settings(
    config_file: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """File, then command-line `overrides` (dotted keys like `http.listen`), then GITSYNC_* variables."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    if config_file:
        data = _read_file(config_file)
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, key, value)
    for key, value in _env_overrides(environ).items():
        _set_dotted(data, key, value)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        where = config_file or "settings"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors(include_url=False)
        )
        raise ConfigError(f"{where}: {problems}") from None


def _read_file(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config file must be a mapping of keys")
    return data


_ENV_KEYS = {
    "DB": "db",
    "DATA_DIR": "data_dir",
    "EXECUTOR": "executor",
    "SECRETS_FILE": "secrets_file",
    "HTTP_LISTEN": "http.listen",
    "HTTP_PUBLIC_URL": "http.public_url",
    "HTTP_TOKEN_ENV": "http.token_env",
    "TASKS_ENV_ALLOW": "tasks.env_allow",
    "TASKS_PYTHON": "tasks.python",
    "TASKS_PYTHON_ENV": "tasks.python_env",
    "LEASE_SECONDS": "lease_seconds",
    "CELERY_DEFAULT_QUEUE": "celery.default_queue",
    "CELERY_MAX_IN_FLIGHT": "celery.max_in_flight",
    "CELERY_MAX_FILE_MB": "celery.max_file_mb",
    "CELERY_VISIBILITY_TIMEOUT": "celery.visibility_timeout",
    "CELERY_CLAIM_SECONDS": "celery.claim_seconds",
}


def _env_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    return {dotted: environ[ENV_PREFIX + key] for key, dotted in _ENV_KEYS.items() if ENV_PREFIX + key in environ}


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
