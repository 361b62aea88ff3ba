"""The S3 `Trigger`: poll a bucket every `interval`; the objects that are new (or changed, `on`) since the last poll
start one execution with `trigger.objects` (each fetched into storage: its `uri`), then are MOVEd, DELETEd or left
(NONE) as `action` says. Each object version fires once: the control plane records it with the execution
(runner/polling)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from plugins.aws.s3.common import Action, ListOptions, MoveTo, act, fetch, list_objects
from plugins.scripts.files import as_int
from runner.polling import Found, PollContext, PollingTrigger
from runner.types import Duration, Dyn


class Trigger(ListOptions, PollingTrigger):
    """Start an execution for the new objects of a bucket, then move or delete them."""

    type_name: ClassVar[str] = "io.kestra.plugin.aws.s3.Trigger"
    inert: ClassVar[dict[str, str]] = {
        **PollingTrigger.inert,
        "stateKey": "what was fired is kept by gitsync with each execution, under the trigger's uid",
        "stateTtl": "what was fired is kept until the object is moved or deleted",
    }

    action: Dyn[Action]
    """What becomes of the objects once their execution is recorded: MOVE (to moveTo), DELETE, or NONE (left: each
    version fires once; a changed object fires again when `on` allows)."""
    moveTo: MoveTo | None = None
    """The bucket and folder key of MOVE."""
    on: Dyn[Literal["CREATE", "UPDATE", "CREATE_OR_UPDATE"]] = "CREATE_OR_UPDATE"
    """Fire for new objects (CREATE), changed ones (UPDATE), or both."""
    maxFiles: Dyn[int] = 25
    """At most this many objects per execution (the rest wait for the next poll)."""
    stateKey: Dyn[str] | None = None
    """Accepted for Kestra's flows: gitsync records what fired in its own state database."""
    stateTtl: Duration | Dyn[str] | None = None
    """Accepted for Kestra's flows: gitsync keeps the record of what fired until the object is gone."""

    def removes(self) -> bool:
        return str(self.action) in ("MOVE", "DELETE")

    def poll(self, ctx: PollContext) -> list[Found]:
        objects = list_objects(self, self.client("s3", self.type_name))
        return [Found(f"s3://{self.bucket}/{o['key']}", f"{o['etag']}@{o['lastModified']}", o) for o in objects]

    def keeps(self, found: Found, fired_before: str | None) -> bool:
        """Whether `on` fires for it: never fired (CREATE), fired with another version (UPDATE)."""
        if fired_before == found.version:
            return False
        wanted = str(self.on)
        return wanted == "CREATE_OR_UPDATE" or (wanted == "CREATE") == (fired_before is None)

    def batch_size(self) -> int | None:
        return as_int(self.maxFiles, 25)

    def trigger_variables(self, ctx: PollContext, found: list[Found]) -> dict[str, Any]:
        client = self.client("s3", self.type_name)
        objects = []
        for item in found:
            uri, _ = fetch(ctx, client, self, self.bucket, item.value["key"], RequestPayer=self.requestPayer)
            objects.append({**item.value, "uri": uri})
        return {"objects": objects}

    def after(self, ctx: PollContext, found: list[Found]) -> None:
        act(ctx, self.client("s3", self.type_name), self, [f.value for f in found],
            str(self.action), self.moveTo)  # fmt: skip
