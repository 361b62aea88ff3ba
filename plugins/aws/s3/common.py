"""What the S3 types share: the bucket, the listing Kestra's List, Downloads, DeleteList and Trigger do (pages of
ListObjectsV2, `regexp` on the whole key, `filter` of files or "directories"), an object as Kestra shows it, one
object fetched into the execution's storage, and the MOVE / DELETE action after a download."""

from __future__ import annotations

import os
import posixpath
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import regex

from plugins.aws.connection import AwsConnection, aws_errors, call
from plugins.scripts.files import as_int
from plugins.values import Options
from runner.api import Logger, Storage, TaskFailed
from runner.plugin import Task
from runner.types import Dyn

PAGE = 1000
"""S3 returns at most 1000 keys per ListObjectsV2 page."""
REGEX_SECONDS = 1.0
"""The longest a `regexp` may take on one key (a pattern that backtracks without end fails the task)."""
Filter = Literal["FILES", "DIRECTORY", "BOTH"]
Action = Literal["MOVE", "DELETE", "NONE"]


class Place(Protocol):
    """Where fetched objects go and what is logged: a task's RunContext, or a trigger's PollContext."""

    @property
    def storage(self) -> Storage: ...
    @property
    def logger(self) -> Logger: ...
    @property
    def workdir(self) -> Path: ...


class S3Task(AwsConnection, Task):
    """A task on one bucket."""

    bucket: Dyn[str]
    """The bucket's name."""
    requestPayer: Dyn[str] | None = None
    """`requester` when the bucket is Requester Pays."""

    def s3(self) -> Any:
        return self.client("s3", self.type_name)

    def doing(self, what: str) -> str:
        return f"{what} in bucket '{self.bucket}'"


class ListOptions(AwsConnection):
    """Which objects a listing keeps (Kestra's `ListInterface`)."""

    bucket: Dyn[str]
    """The bucket's name."""
    requestPayer: Dyn[str] | None = None
    """`requester` when the bucket is Requester Pays."""
    prefix: Dyn[str] | None = None
    """Only keys that begin with it."""
    delimiter: Dyn[str] | None = None
    """Groups keys: keys with the delimiter after the prefix are left out (S3's CommonPrefixes)."""
    marker: Dyn[str] | None = None
    """List the keys after this one."""
    encodingType: Dyn[str] | None = None
    """`url` to have S3 encode the keys it returns."""
    maxKeys: Dyn[int] = 1000
    """At most this many keys are read from S3 (over several pages when above 1000)."""
    expectedBucketOwner: Dyn[str] | None = None
    """The account id that must own the bucket (403 otherwise)."""
    regexp: Dyn[str] | None = None
    """Keep the keys this regular expression matches whole (Java's `matches`), e.g. `.*\\.csv`."""
    filter: Dyn[Filter] = "BOTH"
    """FILES (keys not ending in /), DIRECTORY (keys ending in /) or BOTH."""


def list_objects(conn: ListOptions, client: Any, kind: Filter | None = None) -> list[dict[str, Any]]:
    """The objects the listing options keep, as Kestra shows them (key, etag, size, lastModified, owner); `kind`
    overrides `filter`."""
    limit = as_int(conn.maxKeys, 1000)
    request: dict[str, Any] = {"Bucket": conn.bucket, "MaxKeys": max(1, min(limit, PAGE))}
    for name, field in (("Prefix", "prefix"), ("Delimiter", "delimiter"), ("StartAfter", "marker"),
                        ("EncodingType", "encodingType"), ("ExpectedBucketOwner", "expectedBucketOwner"),
                        ("RequestPayer", "requestPayer")):  # fmt: skip
        value = getattr(conn, field)
        if value not in (None, ""):
            request[name] = value
    found: list[dict[str, Any]] = []
    with aws_errors(f"list the objects of bucket '{conn.bucket}'", conn.endpointOverride):
        while True:
            page = client.list_objects_v2(**request)
            found.extend(page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if len(found) >= limit or not page.get("IsTruncated") or not token:
                break
            request["ContinuationToken"] = token
    pattern = _pattern(conn.regexp)
    kept = [s3_object(o) for o in found[:limit] if _keeps(o["Key"], pattern, kind or str(conn.filter))]
    return kept


def _pattern(text: str | None) -> Any:
    if not text:
        return None
    try:
        return regex.compile(text, regex.V0)
    except regex.error as exc:
        raise TaskFailed(f"regexp {text!r} is not a valid regular expression: {exc}", permanent=True) from None


def _keeps(key: str, pattern: Any, kind: str) -> bool:
    if kind == "DIRECTORY" and not key.endswith("/"):
        return False
    if kind == "FILES" and key.endswith("/"):
        return False
    if pattern is None:
        return True
    try:
        return pattern.fullmatch(key, timeout=REGEX_SECONDS) is not None
    except TimeoutError:
        raise TaskFailed(f"regexp {pattern.pattern!r} took more than {REGEX_SECONDS:g} s on key {key!r}") from None


def s3_object(found: dict[str, Any]) -> dict[str, Any]:
    """One listed object with Kestra's field names (`S3Object`)."""
    owner = found.get("Owner")
    modified = found.get("LastModified")
    return {
        "key": found["Key"],
        "etag": found.get("ETag"),
        "size": found.get("Size"),
        "lastModified": _instant(modified) if isinstance(modified, datetime) else modified,
        "owner": {"id": owner.get("ID"), "displayName": owner.get("DisplayName")} if owner else None,
    }


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def fetch(
    ctx: Place, client: Any, conn: AwsConnection, bucket: str, key: str, **extra: Any
) -> tuple[str, dict[str, Any]]:
    """Fetch one object into the execution's storage: its kestra:/// URI and the GetObject response's fields."""
    request = {"Bucket": bucket, "Key": key, **{k: v for k, v in extra.items() if v not in (None, "")}}
    name = posixpath.basename(key.rstrip("/")) or "object"
    fd, temp = tempfile.mkstemp(prefix=".s3-", dir=ctx.workdir)
    os.close(fd)
    try:
        with aws_errors(f"download '{key}' from bucket '{bucket}'", conn.endpointOverride):
            response = client.get_object(**request)
            with open(temp, "wb") as out:
                for chunk in response["Body"].iter_chunks(1 << 20):
                    out.write(chunk)
        uri = ctx.storage.put(Path(temp), name)
    finally:
        Path(temp).unlink(missing_ok=True)
    return uri, response


class MoveTo(Options):
    """Where MOVE puts the objects (Kestra's `Copy.CopyObject`): each goes to `key/<its file name>`."""

    bucket: str | None = None
    """The bucket (the listed bucket when unset)."""
    key: str
    """The folder (key prefix) the objects are moved into."""
    serverSideEncryption: str | None = None
    kmsKeyId: str | None = None


def act(
    ctx: Place, client: Any, conn: ListOptions, objects: list[dict[str, Any]], action: str | None,
    move_to: MoveTo | None,
) -> None:  # fmt: skip
    """What Kestra's Downloads and Trigger do with the objects after they are fetched: MOVE, DELETE or nothing."""
    if action in (None, "NONE"):
        return
    if action == "MOVE" and move_to is None:
        raise TaskFailed("action MOVE needs moveTo (the key, and the bucket when another)", permanent=True)
    for found in objects:
        key = found["key"]
        if action == "MOVE":
            assert move_to is not None
            target = f"{move_to.key.rstrip('/')}/{posixpath.basename(key)}"
            bucket = move_to.bucket or conn.bucket
            call(f"move '{key}' to '{bucket}/{target}'", conn.endpointOverride, client.copy_object,
                 Bucket=bucket, Key=target, CopySource={"Bucket": conn.bucket, "Key": key})  # fmt: skip
        call(f"delete '{key}' from bucket '{conn.bucket}'", conn.endpointOverride, client.delete_object,
             Bucket=conn.bucket, Key=key)  # fmt: skip
        ctx.logger.debug(f"{'moved' if action == 'MOVE' else 'deleted'} {conn.bucket}/{key}")
