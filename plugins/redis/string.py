"""Redis string tasks: `Set` (SET with NX/XX, a TTL, GET), `Get` (GET) and `Delete` (DEL), as Kestra's.

The older names `io.kestra.plugin.redis.Set/Get/Delete` are aliases. Values go through the task's `serdeType`:
STRING stores text, JSON stores JSON text and reads it back as a value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from plugins.core._props import as_bool, as_seconds
from plugins.redis.connection import SerdeType, connect, deserialize, serialize
from plugins.scripts.files import as_list
from plugins.values import Options, StrList
from runner.api import RunContext, TaskFailed
from runner.plugin import Task
from runner.types import Dyn, DynDuration


class _Redis(Task):
    url: str
    """The server: redis://[[user]:password@]host[:port][/db] (rediss:// for TLS)."""


class SetOptions(Options):
    """SET's options (https://redis.io/commands/set/)."""

    expirationDuration: DynDuration | None = None
    """The key's time to live."""
    expirationDate: str | datetime | None = None
    """The moment the key expires (ISO-8601 with a zone)."""
    mustNotExist: Dyn[bool] = False
    """Set only when the key does not exist (NX)."""
    mustExist: Dyn[bool] = False
    """Set only when the key exists (XX)."""
    keepTtl: Dyn[bool] = False
    """Keep the key's current time to live (KEEPTTL)."""

    def arguments(self) -> dict[str, Any]:
        """redis-py's `set` keyword arguments; a contradiction is the task's failure, as Kestra's."""
        seconds = as_seconds(self.expirationDuration, "options.expirationDuration")
        at = _moment(self.expirationDate)
        keep = as_bool(self.keepTtl, "options.keepTtl")
        if keep and (seconds is not None or at is not None):
            raise TaskFailed(
                "options: keepTtl keeps the key's current expiry, so it cannot be combined with expirationDuration "
                "or expirationDate; use one or the other"
            )
        nx, xx = as_bool(self.mustNotExist, "options.mustNotExist"), as_bool(self.mustExist, "options.mustExist")
        if nx and xx:
            raise TaskFailed("options: mustNotExist and mustExist contradict each other; set at most one")
        args: dict[str, Any] = {"nx": nx, "xx": xx, "keepttl": keep}
        if seconds is not None:
            if seconds <= 0:
                raise TaskFailed(f"options.expirationDuration must be positive, got {self.expirationDuration!r}")
            args["px"] = max(1, round(seconds * 1000))
        if at is not None:
            args["pxat"] = round(at.timestamp() * 1000)
        return args


def _moment(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise TaskFailed(f"options.expirationDate must be an ISO-8601 date-time, got {value!r}") from None
    if moment.tzinfo is None:
        raise TaskFailed(f"options.expirationDate needs a zone (e.g. 2030-01-31T10:00:00Z), got {value!r}")
    return moment


class Set(_Redis):
    """Set a key to a value (SET); with `get`, return the value it replaced."""

    type_name: ClassVar[str] = "io.kestra.plugin.redis.string.Set"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.redis.Set",)

    key: str
    """The key; rendered."""
    value: Any
    """The value; rendered, then serialized by serdeType."""
    options: SetOptions = SetOptions()
    """TTL and NX/XX guards."""
    get: Dyn[bool] = False
    """Return the key's previous value (the `oldValue` output)."""
    serdeType: Dyn[SerdeType] = "STRING"
    """How the value is written: STRING or JSON."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        value = serialize(self.value, str(self.serdeType))
        args = self.options.arguments()
        want_old = as_bool(self.get, "get")
        with connect(self.url, self.type_name) as client:
            done = client.set(self.key, value, get=want_old, **args)
        if not want_old and not done:
            why = "it does not exist (mustExist)" if args["xx"] else "it already exists (mustNotExist)"
            ctx.logger.info(f"redis: key {self.key!r} was not set: {why}")
        else:
            ctx.logger.debug(f"redis: set key {self.key!r}")
        return {"oldValue": done} if want_old and done is not None else {}


class Get(_Redis):
    """Read a key's value (GET) into the `data` output."""

    type_name: ClassVar[str] = "io.kestra.plugin.redis.string.Get"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.redis.Get",)

    key: str
    """The key; rendered."""
    serdeType: Dyn[SerdeType] = "STRING"
    """How the value is read: STRING or JSON."""
    failedOnMissing: Dyn[bool] = False
    """Fail when the key does not exist."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        with connect(self.url, self.type_name) as client:
            payload = client.get(self.key)
        if payload is None and as_bool(self.failedOnMissing, "failedOnMissing"):
            raise TaskFailed(f"Redis key {self.key!r} does not exist (failedOnMissing: true)")
        return {"data": deserialize(payload, str(self.serdeType), self.key), "key": self.key}


class Delete(_Redis):
    """Delete keys (DEL); the `count` output says how many existed."""

    type_name: ClassVar[str] = "io.kestra.plugin.redis.string.Delete"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.redis.Delete",)

    keys: StrList
    """The keys to delete."""
    failedOnMissing: Dyn[bool] = False
    """Fail when a key does not exist."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        keys = as_list(self.keys)
        if not keys:
            return {"count": 0}
        with connect(self.url, self.type_name) as client:
            count = int(client.delete(*keys))
        if count < len(keys) and as_bool(self.failedOnMissing, "failedOnMissing"):
            raise TaskFailed(
                f"only {count} of the {len(keys)} Redis keys existed and were deleted (failedOnMissing: true)",
                outputs={"count": count},
            )
        return {"count": count}
