"""The contract of a polling trigger (Kestra's `PollingTriggerInterface`): every `interval` the control plane asks
it what is new, starts one execution with what it found, then lets it act on what it found (move, delete).

The control plane keeps what each trigger has fired (item -> version) in the same transaction as the execution it
fired, so an item is fired once, also across a restart: `poll` lists, the control plane drops what was fired with
the same version, `trigger_variables` gives the variables of the rest, and `after` runs once the execution is recorded
(and again, on the next poll, for items fired before whose `after` a stop interrupted).
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from runner.api import KeyValue, Logger, RunContext, Storage
from runner.plugin import Trigger
from runner.types import Duration


@dataclass(frozen=True)
class Found:
    """One thing a poll found: `item` names it (s3://bucket/key), `version` changes when it does (etag and time)."""

    item: str
    version: str
    value: Any
    """What `trigger_variables` and `after` receive for it (the listed object)."""


@dataclass
class PollContext:
    """What a poll may use: where fetched files go (kestra:/// URIs the execution reads), a log, a scratch folder."""

    storage: Storage
    logger: Logger
    workdir: Path
    namespace: str = ""
    flow_id: str = ""
    kv: KeyValue | None = None
    """The flow's key-value store (a trigger that claims what it fires there: SFTP's NONE action)."""
    secrets: list[str] = field(default_factory=list)

    def run_context(self, trigger_id: str) -> RunContext:
        """A task's view of this poll, for a trigger whose poll runs task code (a JDBC query, an SFTP session)."""
        if self.kv is None:
            raise RuntimeError("this poll has no key-value store")
        return RunContext(
            execution_id="",
            namespace=self.namespace,
            flow_id=self.flow_id,
            flow_revision=0,
            task_id=trigger_id,
            task_run_id=f"poll-{uuid.uuid4().hex[:12]}",
            attempt=1,
            workdir=self.workdir,
            logger=self.logger,
            storage=self.storage,
            kv=self.kv,
            secrets=list(self.secrets),
        )


class PollingTrigger(Trigger):
    """A trigger the control plane polls every `interval`."""

    interval: Duration = timedelta(seconds=60)
    """How often to poll (ISO-8601, e.g. PT30S)."""

    @abstractmethod
    def poll(self, ctx: PollContext) -> list[Found]:
        """Everything there now (what was fired before included: the control plane drops it)."""

    def keeps(self, found: Found, fired_before: str | None) -> bool:
        """Whether to fire for `found`, given the version fired before (None: never): a new version by default."""
        return fired_before != found.version

    def batch_size(self) -> int | None:
        """At most this many items per execution (the rest wait for the next poll); None: all."""
        return None

    @abstractmethod
    def trigger_variables(self, ctx: PollContext, found: list[Found]) -> dict[str, Any]:
        """The trigger variables (`trigger.*`) of one execution for the new items."""

    def after(self, ctx: PollContext, found: list[Found]) -> None:
        """What the trigger does with items once their execution is recorded (nothing by default)."""

    def removes(self) -> bool:
        """Whether `after` takes the items away (then the record of them may be dropped once it ran)."""
        return False


class ClaimingTrigger(PollingTrigger):
    """A polling trigger that claims what it fires by itself: an SFTP file renamed or removed by one poller, a JDBC
    query whose `afterSQL` marks its rows read. Each poll that claims something fires one execution with the
    variables `claim` returns; the control plane's record of it is dropped once the execution is written."""

    @abstractmethod
    def claim(self, ctx: RunContext) -> dict[str, Any] | None:
        """One poll: the trigger variables of what this poll claimed, or None when nothing is new."""

    def poll(self, ctx: PollContext) -> list[Found]:
        variables = self.claim(ctx.run_context(self.id))
        return [] if variables is None else [Found(f"claim:{uuid.uuid4().hex}", "claimed", variables)]

    def trigger_variables(self, ctx: PollContext, found: list[Found]) -> dict[str, Any]:
        return dict(found[0].value)

    def removes(self) -> bool:
        return True
