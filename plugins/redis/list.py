"""Redis list tasks: `ListPush` (LPUSH values to the head of a list) and `ListPop` (LPOP into an Ion file), as
Kestra's. The older names `io.kestra.plugin.redis.ListPush/ListPop` are aliases.

`from` is a list of values, a JSON array in a text, or the `kestra://` URI of an Ion file of rows (what a
ListPop, a jdbc STORE or a serdes task writes): each item is serialized by `serdeType` and pushed in batches of
`batchSize` (one LPUSH per batch, so the order is kept). ListPop pops `count` items per call until the list is
empty, `maxRecords` are read or `maxDuration` has passed, and stores them as Ion rows (the `uri` output).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Annotated, Any, ClassVar

from pydantic import Field

from plugins import ion
from plugins.core._props import as_int, as_seconds
from plugins.redis.connection import SerdeType, connect, deserialize, serialize
from plugins.redis.string import _Redis
from runner.api import RunContext, TaskFailed
from runner.types import Dyn, DynDuration


class ListPush(_Redis):
    """Push values to the head of a list (LPUSH); the `count` output says how many."""

    type_name: ClassVar[str] = "io.kestra.plugin.redis.list.ListPush"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.redis.ListPush",)

    key: str
    """The list's key; rendered."""
    from_: Annotated[list[Any] | str, Field(alias="from")]
    """The values: a list, a JSON array, or the kestra:// URI of an Ion file."""
    serdeType: Dyn[SerdeType] = "STRING"
    """How each value is written: STRING or JSON."""
    batchSize: Dyn[Annotated[int, Field(ge=1)]] = 500
    """Values sent per LPUSH."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        size = as_int(self.batchSize, "batchSize")
        if size < 1:
            raise TaskFailed(f"batchSize must be at least 1, got {self.batchSize!r}")
        serde = str(self.serdeType)
        count = 0
        with connect(self.url, self.type_name) as client:
            values = (serialize(v, serde, "a value of from") for v in self._values(ctx))
            while batch := list(islice(values, size)):
                client.lpush(self.key, *batch)
                count += len(batch)
        ctx.logger.debug(f"redis: pushed {count} values to list {self.key!r}")
        return {"count": count}

    def _values(self, ctx: RunContext) -> Iterable[Any]:
        source = self.from_
        if isinstance(source, list):
            return source
        text = source.strip()
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            return parsed
        if text.startswith("kestra://"):
            return _rows(ctx, text)
        raise TaskFailed(f"from must be a list of values, a JSON array, or a kestra:// file URI; got {text[:80]!r}")


def _rows(ctx: RunContext, uri: str) -> Iterator[Any]:
    path = ctx.storage.path(uri)
    for row in ion.read_file(path, uri):
        yield ion.jsonable(row)


class ListPop(_Redis):
    """Pop values from the head of a list (LPOP) into an Ion file (`uri`, `count` outputs)."""

    type_name: ClassVar[str] = "io.kestra.plugin.redis.list.ListPop"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.redis.ListPop",)

    key: str
    """The list's key; rendered."""
    serdeType: Dyn[SerdeType] = "STRING"
    """How each value is read: STRING or JSON."""
    maxRecords: Dyn[int] | None = None
    """Stop after this many values (checked after each LPOP of `count`)."""
    maxDuration: DynDuration | None = None
    """Stop after this long."""
    count: Dyn[Annotated[int, Field(ge=1)]] = 100
    """Values popped per LPOP."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        limit = None if self.maxRecords in (None, "") else as_int(self.maxRecords, "maxRecords")
        seconds = as_seconds(self.maxDuration, "maxDuration")
        if limit is None and seconds is None:
            raise TaskFailed("set maxRecords or maxDuration: without either, ListPop would wait on the list forever")
        per_call = as_int(self.count, "count")
        serde = str(self.serdeType)
        deadline = None if seconds is None else time.monotonic() + seconds
        total = 0
        path = ctx.workdir / f"redis-{self.key.replace('/', '_')[:40]}.ion"
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        with connect(self.url, self.type_name) as client, path.open("w", encoding="utf-8") as out:
            while True:
                popped = client.lpop(self.key, per_call) or []
                total += ion.write_rows(out, (deserialize(item, serde, self.key) for item in popped))
                if not popped or (limit is not None and total >= limit):
                    break
                if deadline is not None and time.monotonic() > deadline:
                    break
        uri = ctx.storage.put(path, path.name)
        path.unlink()
        ctx.logger.debug(f"redis: popped {total} values from list {self.key!r}")
        return {"count": total, "uri": uri}
