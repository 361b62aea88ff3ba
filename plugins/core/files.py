"""Storage tasks on stored files (Kestra's core `storage` package): Write, Concat, Split, Size, Delete, Reverse.

A file is a `kestra:///` URI (an output, or a FILE input). `split_lines` is Kestra's StorageService split, which
ForEachItem shares: lines grouped by count (`rows`), by size (`bytes`: each part ends at the first line that takes
it to the size), or dealt round-robin into `partitions`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from pydantic import Field

from plugins.core._props import as_bool, as_int
from plugins.serdes.common import charset_of
from runner.api import RunContext, TaskFailed
from runner.plugin import Task
from runner.types import Dyn

_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?B?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3, "GB": 1024**3, "T": 1024**4}


def readable_bytes(value: Any, prop: str = "bytes") -> int:
    """`10MB`, `512KB`, `1024` (bytes; units of 1024, as Kestra's Micronaut converter reads them)."""
    match = _SIZE.match(str(value))
    if match is None:
        raise TaskFailed(f"{prop} must be a size such as 1024, 512KB or 10MB, not {value!r}")
    unit = match.group(2).upper()
    return int(match.group(1)) * _UNITS.get(unit, _UNITS.get(unit.rstrip("B"), 1))


def stored(ctx: RunContext, uri: Any, prop: str) -> Path:
    text = str(uri or "").strip()
    if not text.startswith("kestra://"):
        raise TaskFailed(f"{prop} must be the kestra:/// URI of a stored file, not {text[:120]!r}")
    return ctx.storage.path(text)


def extension_of(uri: str) -> str:
    suffix = PurePosixPath(uri).suffix
    return suffix or ".tmp"


def scratch(ctx: RunContext, suffix: str) -> Path:
    return scratch_in(ctx.workdir, ctx.task_id, suffix)


def scratch_in(folder: Path, name: str, suffix: str) -> Path:
    """A new file name in `folder`, for a result before it is stored."""
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f".{name}-{uuid.uuid4().hex[:8]}{suffix}"


def _lines(path: Path) -> Iterator[str]:
    """The file's lines without their line ends (a last line without one included), as Java's readLine gives."""
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
        for line in handle:
            yield line.rstrip("\r\n") if line.endswith("\n") else line.rstrip("\r")


def split_lines(
    folder: Path,
    name: str,
    source: Path,
    suffix: str,
    separator: str,
    rows: int | None = None,
    size: int | None = None,
    partitions: int | None = None,
) -> list[Path]:
    """The parts of `source` as new files in `folder` (named after `name`), in order (empty partitions left out)."""
    if partitions is not None:
        if partitions < 1:
            raise TaskFailed("partitions must be at least 1")
        parts = [scratch_in(folder, name, suffix) for _ in range(partitions)]
        handles = [part.open("wb") for part in parts]
        try:
            for index, line in enumerate(_lines(source)):
                handles[index % partitions].write((line + separator).encode("utf-8", "surrogateescape"))
        finally:
            for handle in handles:
                handle.close()
        return [part for part in parts if part.stat().st_size > 0]
    if rows is None and size is None:
        raise TaskFailed("give one of bytes, partitions or rows: how to split the file")
    if rows is not None and rows < 1:
        raise TaskFailed("rows must be at least 1")
    files: list[Path] = []
    out = None
    count = written = 0
    try:
        for line in _lines(source):
            full = out is None or (rows is not None and count >= rows) or (size is not None and written >= size)
            if full:
                if out is not None:
                    out.close()
                files.append(scratch_in(folder, name, suffix))
                out = files[-1].open("wb")
                count = written = 0
            data = (line + separator).encode("utf-8", "surrogateescape")
            assert out is not None
            out.write(data)
            written += len(data)
            count += 1
    finally:
        if out is not None:
            out.close()
    return files


class Write(Task):
    """Write text to a new stored file."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.storage.Write"

    content: str
    """The file's content (rendered)."""
    extension: Dyn[str] | None = None
    """The file's extension (`.txt`, `json`…); none by default."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        suffix = str(self.extension or "").strip()
        if suffix and not suffix.startswith("."):
            suffix = "." + suffix
        local = scratch(ctx, suffix)
        local.write_text(self.content, encoding="utf-8")
        try:
            return {"uri": ctx.storage.put(local, f"{self.id}{suffix}")}
        finally:
            local.unlink(missing_ok=True)


class Concat(Task):
    """Concatenate stored files into one, in the order given, with an optional separator after each."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.storage.Concat"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.storages.Concat",)

    files: list[str] | str
    """The files' kestra:/// URIs: a list, or JSON text of one."""
    separator: str | None = None
    """Written after each file."""
    extension: str = ".tmp"
    """The extension of the file made."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        files: Any = self.files
        if isinstance(files, str):
            try:
                files = json.loads(files)
            except ValueError:
                files = [files] if files.strip().startswith("kestra://") else None
        if not isinstance(files, list):
            raise TaskFailed("files must be a list of kestra:/// URIs, or JSON text of one")
        local = scratch(ctx, self.extension)
        with local.open("wb") as out:
            for uri in files:
                out.write(stored(ctx, uri, "files").read_bytes())
                if self.separator is not None:
                    out.write(self.separator.encode("utf-8"))
        try:
            return {"uri": ctx.storage.put(local, f"{self.id}{self.extension}")}
        finally:
            local.unlink(missing_ok=True)


class Split(Task):
    """Split a stored file by lines into several: by `rows`, by `bytes`, or into `partitions`."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.storage.Split"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.storages.Split",)

    from_: str = Field(alias="from")
    """The file's kestra:/// URI."""
    bytes: Dyn[str] | None = None
    """The size of each part (`10MB`): a part ends at the first line that takes it to this size."""
    partitions: Dyn[int] | None = None
    """How many parts: lines are dealt to them in turn."""
    rows: Dyn[int] | None = None
    """Lines per part."""
    separator: Dyn[str] = "\n"
    """What ends each line written."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        source = stored(ctx, self.from_, "from")
        suffix = extension_of(str(self.from_))
        parts = split_lines(
            ctx.workdir,
            ctx.task_id,
            source,
            suffix,
            str(self.separator),
            rows=None if self.rows is None else as_int(self.rows, "rows"),
            size=None if self.bytes is None else readable_bytes(self.bytes),
            partitions=None if self.partitions is None else as_int(self.partitions, "partitions"),
        )
        stem = PurePosixPath(str(self.from_)).stem or self.id
        uris = []
        for index, part in enumerate(parts):
            uris.append(ctx.storage.put(part, f"{stem}-{index}{suffix}"))
            part.unlink(missing_ok=True)
        return {"uris": uris}


class Size(Task):
    """The size of a stored file, in bytes."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.storage.Size"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.storages.Size",)

    uri: str
    """The file's kestra:/// URI."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        return {"size": stored(ctx, self.uri, "uri").stat().st_size}


class Delete(Task):
    """Delete a stored file."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.storage.Delete"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.storages.Delete",)

    uri: str
    """The file's kestra:/// URI."""
    errorOnMissing: Dyn[bool] = False
    """Fail when there is no such file (otherwise `deleted` is false)."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        uri = str(self.uri).strip()
        try:
            path = stored(ctx, uri, "uri")
            deleted = path.is_file()
            path.unlink(missing_ok=True)
        except TaskFailed:
            deleted = False
        if not deleted and as_bool(self.errorOnMissing, "errorOnMissing"):
            raise TaskFailed(f"Unable to find file '{uri}': nothing was deleted (errorOnMissing is true)")
        return {"uri": uri, "deleted": deleted}


class Reverse(Task):
    """Write a stored file's lines in reverse order."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.storage.Reverse"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.storages.Reverse",)

    from_: str = Field(alias="from")
    """The file's kestra:/// URI."""
    separator: Dyn[str] = "\n"
    """What ends each line written."""
    charset: Dyn[str] = "UTF-8"
    """The file's character set."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        source = stored(ctx, self.from_, "from")
        charset = charset_of(self.charset)
        suffix = extension_of(str(self.from_))
        lines = source.read_text(encoding=charset).splitlines()
        local = scratch(ctx, suffix)
        local.write_bytes("".join(line + str(self.separator) for line in reversed(lines)).encode(charset))
        try:
            return {"uri": ctx.storage.put(local, f"{PurePosixPath(str(self.from_)).stem}-reversed{suffix}")}
        finally:
            local.unlink(missing_ok=True)
