"""Kestra's JDBC URLs (`jdbc:postgresql://host:port/db?key=value`, `jdbc:mysql://…`) read into what the Python
drivers take: host, port, database and the query's options."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from runner.api import TaskFailed


@dataclass
class JdbcUrl:
    host: str
    port: int
    database: str | None
    options: dict[str, str] = field(default_factory=dict)
    """The query string's options (`?sslmode=require&user=…`), keys as written."""

    def option(self, *names: str) -> str | None:
        """The value of the first of `names` present (compared without case)."""
        lowered = {key.lower(): value for key, value in self.options.items()}
        for name in names:
            if name.lower() in lowered:
                return lowered[name.lower()]
        return None


def parse_jdbc_url(url: str, scheme: str, default_port: int) -> JdbcUrl:
    """`url` read as `jdbc:<scheme>://host[:port][/database][?options]`; a clear TaskFailed otherwise."""
    prefix = f"jdbc:{scheme}:"
    example = f"jdbc:{scheme}://127.0.0.1:{default_port}/mydb"
    text = (url or "").strip()
    if not text:
        raise TaskFailed(f"url is empty: it must name the server, such as {example}")
    if not text.startswith(prefix):
        raise TaskFailed(f"url must start with {prefix}// (such as {example}), not {_shown(text)!r}")
    rest = text[len("jdbc:") :]
    if not rest[len(scheme) + 1 :].startswith("//"):
        raise TaskFailed(f"url must name the server after {prefix}// (such as {example}), not {_shown(text)!r}")
    parts = urlsplit(rest)
    hostport = parts.netloc.rsplit("@", 1)[-1]
    if "," in hostport:
        raise TaskFailed(f"url names several servers ({hostport}); gitsync connects to one: name one host")
    try:
        port = parts.port or default_port
    except ValueError:
        raise TaskFailed(f"url has a port that is not a number: {_shown(text)!r}") from None
    database = unquote(parts.path.lstrip("/")) or None
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    return JdbcUrl(parts.hostname or "localhost", port, database, options)


def _shown(url: str) -> str:
    """The URL without a password written into it (`password=` option or `user:password@`)."""
    parts = urlsplit(url[len("jdbc:") :]) if url.startswith("jdbc:") else None
    if parts is None:
        return url
    shown = url
    if parts.password:
        shown = shown.replace(f":{parts.password}@", ":****@")
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() == "password" and value:
            shown = shown.replace(value, "****")
    return shown
