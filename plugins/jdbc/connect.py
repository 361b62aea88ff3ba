"""What the tasks on database servers (PostgreSQL, MySQL) share: the JDBC URL read into the driver's connection,
credentials from the properties or the URL, connection errors told without the password, TLS files."""

from __future__ import annotations

import os
import uuid
from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plugins.jdbc.common import Backend, Statement
from plugins.jdbc.sqltext import Dialect, pyformat, split_statements
from plugins.jdbc.urls import JdbcUrl, parse_jdbc_url
from runner.api import RunContext, TaskFailed


@dataclass
class ServerBackend(Backend):
    """A connection to a database server named by a JDBC URL; subclasses open it with their driver (`open`)."""

    dialect: ClassVar[Dialect]
    product: ClassVar[str]
    scheme: ClassVar[str]
    default_port: ClassVar[int]

    task_type: str = ""
    jdbc_url: JdbcUrl = field(default_factory=lambda: JdbcUrl("localhost", 0, None))
    user: str | None = None
    secret: str | None = None
    zone: str | None = None
    ssl: dict[str, Any] = field(default_factory=dict)

    def configure(self, task_type: str, url: str, username: str | None, password: str | None, zone: str | None) -> None:
        """Read the task's connection properties (a user or password in the URL counts when the property is unset)."""
        self.task_type = task_type
        self.jdbc_url = parse_jdbc_url(url, self.scheme, self.default_port)
        self.user = username or self.jdbc_url.option("user")
        self.secret = password or self.jdbc_url.option("password")
        if zone:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise TaskFailed(f"timeZoneId {zone!r} is not a time zone (such as Europe/Paris or UTC)") from None
        self.zone = zone or None

    @abstractmethod
    def open(self) -> Any:
        """The driver's connection; a TaskFailed from `connect_failed` when the server refuses it."""

    def connect(self) -> None:
        self.conn = self.open()

    def connect_failed(self, exc: BaseException) -> TaskFailed:
        """The driver's refusal, said with where and as whom, the password never shown."""
        where = f"{self.jdbc_url.host}:{self.jdbc_url.port}"
        who = f" as {self.user!r}" if self.user else ""
        return TaskFailed(self.masked(f"could not connect to {self.product} at {where}{who}: {_one_line(exc)}"))

    def masked(self, text: str) -> str:
        return text.replace(self.secret, "****") if self.secret else text

    def statements(self, sql: str, parameters: dict[str, Any]) -> list[Statement]:
        names = set(parameters)
        found = []
        for text in split_statements(sql, self.dialect):
            formatted, used = pyformat(text, names, self.dialect) if names else (text, [])
            found.append(Statement(text, (formatted, used)))
        return found


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def ssl_files(
    ctx: RunContext, options: dict[str, Any], root: str | None, cert: str | None, key: str | None
) -> dict[str, Any]:
    """libpq's TLS options, the PEM texts written to files of the working directory that only this user reads."""
    found = dict(options)
    for option, text in (("sslrootcert", root), ("sslcert", cert), ("sslkey", key)):
        if text:
            found[option] = str(_private_file(ctx.workdir, text, option))
    return found


def _private_file(folder: Path, text: str, what: str) -> Path:
    path = folder / f".{what}-{uuid.uuid4().hex[:8]}.pem"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text if text.endswith("\n") else text + "\n")
    return path
