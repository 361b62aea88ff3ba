"""Archives and compressed files (Kestra's plugin-compress): ArchiveCompress, ArchiveDecompress, FileCompress,
FileDecompress, with the standard library's zipfile, tarfile, gzip, bz2, lzma and zlib.

Archives: ZIP, JAR (a zip) and TAR, a TAR optionally compressed (`compression`). Compressions: GZIP, BZIP2, XZ, LZMA,
DEFLATE (zlib). Kestra's other algorithms (AR, CPIO, ARJ, DUMP; BROTLI, SNAPPY, LZ4, Z, ZSTD) are refused with a
message naming those that work. An archive entry whose path leaves the working directory is refused (path traversal).
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import shutil
import tarfile
import uuid
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from pydantic import Field

from runner.api import RunContext, TaskFailed
from runner.plugin import Task
from runner.types import Dyn

ARCHIVES = ("ZIP", "JAR", "TAR")
KESTRA_ARCHIVES = ("AR", "ARJ", "CPIO", "DUMP", *ARCHIVES)
COMPRESSIONS: dict[str, tuple[Callable[..., Any], str]] = {
    "GZIP": (gzip.open, ".gz"),
    "BZIP2": (bz2.open, ".bz2"),
    "XZ": (lambda path, mode: lzma.open(path, mode, format=lzma.FORMAT_XZ), ".xz"),  # noqa: SIM115 (an opener)
    "LZMA": (lambda path, mode: lzma.open(path, mode, format=lzma.FORMAT_ALONE), ".lzma"),  # noqa: SIM115
}
KESTRA_COMPRESSIONS = ("BROTLI", "BZIP2", "DEFLATE", "GZIP", "LZ4BLOCK", "LZ4FRAME", "LZMA", "SNAPPY", "SNAPPYFRAME",
                       "XZ", "Z", "ZSTD")  # fmt: skip
CHUNK = 1024 * 1024


def _algorithm(value: Any, known: tuple[str, ...], works: tuple[str, ...], prop: str) -> str:
    name = str(value or "").strip().upper()
    if name not in known:
        raise TaskFailed(f"{prop} must be one of {', '.join(known)}, not {value!r}")
    if name not in works:
        raise TaskFailed(f"{prop} {name} is not supported by gitsync; use one of {', '.join(works)}")
    return name


def _compression(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return _algorithm(value, KESTRA_COMPRESSIONS, (*COMPRESSIONS, "DEFLATE"), "compression")


def _source(ctx: RunContext, uri: Any, prop: str = "from") -> Path:
    text = str(uri or "").strip()
    if not text.startswith("kestra://"):
        raise TaskFailed(f"{prop} must be the kestra:/// URI of a stored file, not {text[:120]!r}")
    return ctx.storage.path(text)


def _scratch(ctx: RunContext, suffix: str = "") -> Path:
    return ctx.workdir / f".{ctx.task_id}-{uuid.uuid4().hex[:8]}{suffix}"


def _compress_file(source: Path, target: Path, compression: str) -> None:
    if compression == "DEFLATE":
        packer = zlib.compressobj()
        with source.open("rb") as src, target.open("wb") as out:
            while chunk := src.read(CHUNK):
                out.write(packer.compress(chunk))
            out.write(packer.flush())
        return
    opener = COMPRESSIONS[compression][0]
    with source.open("rb") as src, opener(target, "wb") as out:
        shutil.copyfileobj(src, out, CHUNK)


def _decompress_file(source: Path, target: Path, compression: str) -> None:
    try:
        if compression == "DEFLATE":
            unpacker = zlib.decompressobj()
            with source.open("rb") as src, target.open("wb") as out:
                while chunk := src.read(CHUNK):
                    out.write(unpacker.decompress(chunk))
                out.write(unpacker.flush())
            return
        opener = COMPRESSIONS[compression][0]
        with opener(source, "rb") as src, target.open("wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        raise TaskFailed(f"{source.name} is not {compression} data ({exc})") from None


class _Stored(Task):
    def put(self, ctx: RunContext, local: Path, name: str) -> str:
        try:
            return ctx.storage.put(local, name)
        finally:
            local.unlink(missing_ok=True)


class _OneFile(_Stored):
    """A task on one stored file with a compression algorithm."""

    from_: str = Field(alias="from")
    """The file's kestra:/// URI."""
    compression: Dyn[str]
    """GZIP, BZIP2, XZ, LZMA or DEFLATE."""

    def _start(self, ctx: RunContext) -> tuple[Path, str, Path]:
        """The source file, the compression named, and a scratch file for the result."""
        compression = _compression(self.compression)
        if compression is None:
            raise TaskFailed("compression is required: GZIP, BZIP2, XZ, LZMA or DEFLATE")
        return _source(ctx, self.from_), compression, _scratch(ctx)


class FileCompress(_OneFile):
    """Compress one stored file."""

    type_name: ClassVar[str] = "io.kestra.plugin.compress.FileCompress"

    def run(self, ctx: RunContext) -> dict[str, Any]:
        source, compression, local = self._start(ctx)
        _compress_file(source, local, compression)
        suffix = COMPRESSIONS[compression][1] if compression in COMPRESSIONS else ".deflate"
        return {"uri": self.put(ctx, local, source.name + suffix)}


class FileDecompress(_OneFile):
    """Decompress one stored file (the compressed file's kestra:/// URI in `from`)."""

    type_name: ClassVar[str] = "io.kestra.plugin.compress.FileDecompress"

    def run(self, ctx: RunContext) -> dict[str, Any]:
        source, compression, local = self._start(ctx)
        _decompress_file(source, local, compression)
        name = PurePosixPath(source.name)
        return {"uri": self.put(ctx, local, name.stem if name.suffix else f"{name.name}.out")}


class ArchiveCompress(_Stored):
    """Put stored files into an archive (ZIP, JAR or TAR, a TAR optionally compressed)."""

    type_name: ClassVar[str] = "io.kestra.plugin.compress.ArchiveCompress"

    from_: dict[str, str] | str = Field(alias="from")
    """The files: a map of path in the archive -> kestra:/// URI (or JSON text of one)."""
    algorithm: Dyn[str]
    """ZIP, JAR or TAR."""
    compression: Dyn[str] | None = None
    """For TAR: GZIP, BZIP2, XZ, LZMA or DEFLATE."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        algorithm = _algorithm(self.algorithm, KESTRA_ARCHIVES, ARCHIVES, "algorithm")
        compression = _compression(self.compression)
        files: Any = self.from_
        if isinstance(files, str):
            try:
                files = json.loads(files)
            except ValueError:
                files = None
        if not isinstance(files, dict) or not files:
            raise TaskFailed("from must be a map of file name -> kestra:/// URI (the files to archive)")
        entries = {_entry_name(str(name)): _source(ctx, uri, f"from.{name}") for name, uri in files.items()}
        archive = _scratch(ctx)
        if algorithm in ("ZIP", "JAR"):
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
                for name, path in entries.items():
                    out.write(path, name)
        else:
            with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as out:
                for name, path in entries.items():
                    out.add(path, arcname=name, recursive=False)
        suffix = {"ZIP": ".zip", "JAR": ".jar", "TAR": ".tar"}[algorithm]
        if compression is not None:
            packed = _scratch(ctx)
            _compress_file(archive, packed, compression)
            archive.unlink()
            archive = packed
            suffix += COMPRESSIONS[compression][1] if compression in COMPRESSIONS else ".deflate"
        return {"uri": self.put(ctx, archive, f"{self.id}{suffix}")}


def _entry_name(name: str) -> str:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts:
        raise TaskFailed(f"{name!r} cannot be a file name in an archive: give a relative path without '..'")
    return path.as_posix()


class ArchiveDecompress(_Stored):
    """Extract the files of a stored archive; `files` maps each entry's path to its stored file."""

    type_name: ClassVar[str] = "io.kestra.plugin.compress.ArchiveDecompress"

    from_: str = Field(alias="from")
    """The archive's kestra:/// URI."""
    algorithm: Dyn[str]
    """ZIP, JAR or TAR."""
    compression: Dyn[str] | None = None
    """How the archive itself is compressed (a .tar.gz: GZIP)."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        algorithm = _algorithm(self.algorithm, KESTRA_ARCHIVES, ARCHIVES, "algorithm")
        compression = _compression(self.compression)
        source = _source(ctx, self.from_)
        if compression is not None:
            plain = _scratch(ctx)
            _decompress_file(source, plain, compression)
            source = plain
        out = ctx.workdir / f".{self.id}-{uuid.uuid4().hex[:8]}"
        out.mkdir()
        files: dict[str, str] = {}
        try:
            for name, path in _extract(source, algorithm, out):
                files[name] = ctx.storage.put(path, name.replace(" ", "_"))
        finally:
            shutil.rmtree(out, ignore_errors=True)
            if compression is not None:
                source.unlink(missing_ok=True)
        return {"files": files}


def _extract(archive: Path, algorithm: str, out: Path) -> list[tuple[str, Path]]:
    """(entry name, extracted file) of each file entry; an entry that would leave `out` is refused."""
    found: list[tuple[str, Path]] = []
    try:
        if algorithm in ("ZIP", "JAR"):
            with zipfile.ZipFile(archive) as zipped:
                for info in zipped.infolist():
                    if info.is_dir():
                        continue
                    target = _inside(out, info.filename)
                    with zipped.open(info) as src, target.open("wb") as dst:
                        shutil.copyfileobj(src, dst, CHUNK)
                    found.append((info.filename, target))
        else:
            with tarfile.open(archive, "r:") as tarred:
                for member in tarred:
                    if not member.isfile():
                        continue
                    target = _inside(out, member.name)
                    extracted = tarred.extractfile(member)
                    if extracted is None:
                        continue
                    with extracted, target.open("wb") as dst:
                        shutil.copyfileobj(extracted, dst, CHUNK)
                    found.append((member.name, target))
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as exc:
        raise TaskFailed(f"{archive.name} is not a {algorithm} archive ({exc})") from None
    return found


def _inside(out: Path, name: str) -> Path:
    path = PurePosixPath(name)
    target = (out / path).resolve()
    if path.is_absolute() or ".." in path.parts or not target.is_relative_to(out.resolve()):
        raise TaskFailed(f"the archive entry {name!r} would be written outside the working directory; refused")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target
