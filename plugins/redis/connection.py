"""What the Redis tasks share: the connection from Kestra's `url` and the STRING/JSON serde.

The client library (`redis`) is the `gitsync[redis]` extra, imported when a task runs. The url is a secret in
Kestra (it may hold a password): a message that names it shows it with the password masked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from plugins.extras import require
from runner.api import TaskFailed

SerdeType = Literal["STRING", "JSON"]


def masked(url: str) -> str:
    """`url` with the password (and a user given alone, which Redis reads as the password) as ****."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    login = f"{parts.username or ''}:****@" if parts.password is not None else "****@"
    return urlunsplit((parts.scheme, login + host, parts.path, parts.query, parts.fragment))


@contextmanager
def connect(url: str, task_type: str) -> Iterator[Any]:
    """A client of the server `url` names (redis://, rediss:// or unix://), closed afterwards; a failure to reach it
    or a command it refuses fails the task, naming the server without its password."""
    redis = require("redis", "redis", task_type)
    if not url or not url.strip():
        raise TaskFailed("url is empty: give the Redis server as redis://[:password@]host:port/db")
    try:
        client = redis.Redis.from_url(url.strip(), decode_responses=True, socket_connect_timeout=10)
    except ValueError as exc:
        raise TaskFailed(f"url {masked(url)!r} is not a Redis URL ({exc}); write redis://host:port/db") from None
    try:
        yield client
    except redis.exceptions.ConnectionError as exc:
        raise TaskFailed(f"cannot reach the Redis server at {masked(url)}: {exc}") from None
    except redis.exceptions.ResponseError as exc:
        raise TaskFailed(f"the Redis server at {masked(url)} refused the command: {exc}") from None
    finally:
        client.close()


def serialize(value: Any, serde: str, what: str = "value") -> str:
    """A value as Redis stores it: STRING its text, JSON its JSON text (a text must already be valid JSON)."""
    if serde == "JSON":
        if isinstance(value, str):
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                raise TaskFailed(
                    f"{what} is not valid JSON (serdeType: JSON): {exc.msg} at column {exc.colno}"
                ) from None
            return value
        return json.dumps(value, separators=(",", ":"), default=str)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def deserialize(payload: str | None, serde: str, key: str) -> Any:
    if payload is None or serde != "JSON":
        return payload
    try:
        return json.loads(payload)
    except json.JSONDecodeError as exc:
        raise TaskFailed(
            f"the value of Redis key {key!r} is not JSON ({exc.msg}); read it with serdeType: STRING"
        ) from None
