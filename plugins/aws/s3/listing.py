"""S3 tasks over the objects a listing keeps: List, Downloads (then MOVE / DELETE / NONE) and DeleteList."""

from __future__ import annotations

from typing import Any, ClassVar

from plugins.aws.connection import call
from plugins.aws.s3.common import Action, ListOptions, MoveTo, act, fetch, list_objects
from plugins.scripts.files import as_bool, as_int
from runner.api import RunContext, TaskFailed
from runner.plugin import Task
from runner.types import Dyn


class List(ListOptions, Task):
    """List the objects of a bucket (prefix, delimiter, regexp, filter), at most `maxFiles` of them."""

    type_name: ClassVar[str] = "io.kestra.plugin.aws.s3.List"

    maxFiles: Dyn[int] = 25
    """At most this many objects are returned (a warning says when more matched)."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        objects = list_objects(self, self.client("s3", self.type_name))
        most = as_int(self.maxFiles, 25)
        if len(objects) > most:
            ctx.logger.warn(f"the listing found {len(objects)} objects but maxFiles is {most}: only the first "
                            f"{most} are returned (raise maxFiles to get more)")  # fmt: skip
            objects = objects[:most]
        ctx.logger.debug(f"found {len(objects)} object(s) in bucket '{self.bucket}'")
        return {"objects": objects}


class Downloads(ListOptions, Task):
    """Download every object a listing keeps, then MOVE or DELETE them (or NONE)."""

    type_name: ClassVar[str] = "io.kestra.plugin.aws.s3.Downloads"
    inert: ClassVar[dict[str, str]] = {**Task.inert, "compatibilityMode": "boto3 needs no compatibility mode"}

    action: Dyn[Action]
    """What becomes of the objects once downloaded: MOVE (to moveTo), DELETE, or NONE."""
    moveTo: MoveTo | None = None
    """The bucket and folder key of MOVE."""
    maxFiles: Dyn[int] = 25
    """At most this many objects are downloaded."""
    validateChecksum: Dyn[bool] = False
    """Check each downloaded object against its checksum."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        client = self.client("s3", self.type_name)
        objects = list_objects(self, client)[: as_int(self.maxFiles, 25)]
        downloaded = []
        checksum = "ENABLED" if as_bool(self.validateChecksum) else None
        for found in objects:
            if found["key"].endswith("/"):
                continue
            uri, _ = fetch(ctx, client, self, self.bucket, found["key"], ChecksumMode=checksum,
                           RequestPayer=self.requestPayer)  # fmt: skip
            downloaded.append({**found, "uri": uri})
        act(ctx, client, self, objects, str(self.action), self.moveTo)
        return {"objects": downloaded, "outputFiles": {o["key"]: o["uri"] for o in downloaded}}


class DeleteList(ListOptions, Task):
    """Delete every object a listing keeps; `errorOnEmpty` fails when there is none."""

    type_name: ClassVar[str] = "io.kestra.plugin.aws.s3.DeleteList"
    inert: ClassVar[dict[str, str]] = {**Task.inert, "concurrent": "objects are deleted one after the other"}

    concurrent: int | None = None
    """Accepted for Kestra's flows: gitsync deletes the objects one request at a time."""
    errorOnEmpty: Dyn[bool] = False
    """Fail when the listing keeps no object."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        client = self.client("s3", self.type_name)
        objects = list_objects(self, client)
        size = 0
        for found in objects:
            call(f"delete '{found['key']}' from bucket '{self.bucket}'", self.endpointOverride, client.delete_object,
                 Bucket=self.bucket, Key=found["key"])  # fmt: skip
            size += found.get("size") or 0
        if not objects and as_bool(self.errorOnEmpty):
            raise TaskFailed(f"no object to delete in bucket '{self.bucket}' with regexp={self.regexp!r}, "
                             f"prefix={self.prefix!r}")  # fmt: skip
        ctx.logger.info(f"deleted {len(objects)} object(s), {size} bytes")
        return {"count": len(objects), "size": size}
