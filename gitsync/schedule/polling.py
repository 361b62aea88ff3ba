"""The daemon's polling triggers (`runner.polling.PollingTrigger`: an S3 bucket's new objects...): each is polled
every `interval`; what it found that was not fired before starts one execution, exactly once.

One poll: the trigger's properties are rendered (secrets included) and validated, it lists what is there, what
`trigger_polls` holds at the same version is dropped, the rest (at most its batch size) is fetched into storage,
its `conditions` and `when` judge them (`trigger.*`), and the execution and the record of what it fired are
written in one transaction. Then the trigger acts on the
items (moves or deletes them), their record is dropped when that took them away, and the execution starts. A
stop between the commit and the action leaves the record: the next poll does not fire the items again but acts
on them. A poll that fails is logged (masked) and tried again at the next interval.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitsync.schedule.conditions import ConditionError, ScheduleConditions
from gitsync.state import polls
from gitsync.state.executions import new_execution_id
from runner.api import LevelLogger
from runner.polling import Found, PollContext, PollingTrigger
from runner.registry import Registry
from runner.storage import LocalStorage

if TYPE_CHECKING:
    from gitsync.executions.manager import RunManager

log = logging.getLogger("gitsync.triggers")
TICK_SECONDS = 1.0
"""How often the poller looks for a trigger whose interval has passed."""
JUDGED_LATER = ("when", "conditions", "scheduleConditions")
"""Properties rendered over what a poll found (`trigger.*`), not with the rest before it polls."""


class _ServiceLog(LevelLogger):
    """A poll's log lines go to the service log, masked, naming the trigger."""

    def __init__(self, uid: str, mask: Any) -> None:
        self.uid = uid
        self.mask = mask

    def log(self, level: str, message: str) -> None:
        number = getattr(logging, {"WARN": "WARNING", "TRACE": "DEBUG"}.get(level, level), logging.INFO)
        log.log(number, "trigger %s: %s", self.uid, self.mask(message))


class Poller:
    """Polls the polling triggers of the applied flows; `tick(now)` polls those due (the daemon calls it)."""

    def __init__(self, runs: RunManager, registry: Registry, data_dir: Path) -> None:
        self.runs = runs
        self.store = runs.store
        self.registry = registry
        self.data_dir = Path(data_dir)
        self._due: dict[str, float] = {}
        self._generation: int | None = None
        self._polling: list[tuple[dict[str, Any], type[PollingTrigger]]] = []
        """The polling triggers of the applied flows, as read at `_generation`."""

    def run(self, stop: threading.Event, clock: Any) -> None:
        """Poll until `stop` is set (the daemon's thread)."""
        while not stop.wait(TICK_SECONDS):
            self.tick(clock())

    def tick(self, now: float) -> list[str]:
        """Poll every trigger due at `now` (monotonic seconds); the executions started."""
        started: list[str] = []
        seen = set()
        for row, cls in self._triggers():
            seen.add(row["uid"])
            if self._due.get(row["uid"], 0.0) > now:
                continue
            try:
                trigger = self._trigger(row, cls)
                self._due[row["uid"]] = now + trigger.interval.total_seconds()
                execution_id = self.poll(row, trigger)
            except Exception as exc:  # any failure of one poll is logged; the next one tries again
                self._due.setdefault(row["uid"], now + 60.0)
                log.warning("trigger %s could not poll: %s", row["uid"], self.runs.renderer.masker.mask(str(exc)))
                continue
            if execution_id:
                started.append(execution_id)
        self._due = {uid: at for uid, at in self._due.items() if uid in seen}
        return started

    def _triggers(self) -> list[tuple[dict[str, Any], type[PollingTrigger]]]:
        """The polling triggers, read again only when a trigger or a flow changed (the schedule generation moved):
        an idle tick reads one row, not every trigger."""
        current = polls.generation(self.store)
        if current != self._generation:
            found = []
            for row in polls.polling_rows(self.store):
                cls = self.registry.lookup(row["type"])
                if cls is not None and issubclass(cls, PollingTrigger):
                    found.append((row, cls))
            self._polling, self._generation = found, current
        return self._polling

    def _trigger(self, row: dict[str, Any], cls: type[PollingTrigger]) -> PollingTrigger:
        namespace, _, flow_id = row["flow_uid"].rpartition(".")
        variables = {"flow": {"namespace": namespace, "id": flow_id}, "trigger": {}}
        judged = {k: v for k, v in row["spec"].items() if k in JUDGED_LATER}
        rest = {k: v for k, v in row["spec"].items() if k not in JUDGED_LATER}
        rendered = self.runs.renderer.render_value(rest, variables)
        return cls.model_validate({**rendered, **judged})

    def poll(self, row: dict[str, Any], trigger: PollingTrigger) -> str | None:
        """One poll of one trigger; the execution it started, if any."""
        uid = row["uid"]
        namespace, _, flow_id = row["flow_uid"].rpartition(".")
        staging = LocalStorage(self.data_dir, namespace, flow_id, new_execution_id(), task_id=trigger.id)
        scratch = Path(tempfile.mkdtemp(prefix="gitsync-poll-"))
        masker = self.runs.renderer.masker
        ctx = PollContext(
            staging, _ServiceLog(uid, masker.mask), scratch, namespace, flow_id, self.runs.kv, list(masker.values())
        )
        try:
            found = trigger.poll(ctx)
            before = polls.fired(self.store, uid, [f.item for f in found])
            again = [f for f in found if before.get(f.item) == f.version]
            if again and trigger.removes():  # fired, but a stop came before they were moved or deleted
                trigger.after(ctx, again)
                polls.forget(self.store, uid, [f.item for f in again])
            new = [f for f in found if f.item not in {a.item for a in again} and trigger.keeps(f, before.get(f.item))]
            new = new[: trigger.batch_size() or len(new)]
            if not new:
                return None
            return self._fire(row, trigger, ctx, new)
        except BaseException:
            staging.delete_all()
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _accepts(self, row: dict[str, Any], variables: dict[str, Any]) -> bool:
        """The trigger's `conditions` and `when` over what it found (`trigger.objects`...), as a Webhook's are."""
        judge = ScheduleConditions(self.registry, self.runs.renderer.evaluate)
        if not judge.applies(row["spec"]):
            return True
        try:
            accepted = judge.accepts(row["spec"], variables, schedule=False)
        except ConditionError as exc:
            log.warning("trigger %s did not fire: %s", row["uid"], self.runs.renderer.masker.mask(str(exc)))
            return False
        if not accepted:
            log.info("trigger %s found new items, but its conditions or `when` refuse them", row["uid"])
        return accepted

    def _fire(self, row: dict[str, Any], trigger: PollingTrigger, ctx: PollContext, new: list[Found]) -> str | None:
        uid = row["uid"]
        variables = trigger.trigger_variables(ctx, new)
        if not self._accepts(row, variables):
            ctx.storage.delete_all()  # not fired: nothing recorded, the items are judged again at the next poll
            return None
        with self.store.atomic():
            execution_id = self.runs.create(
                row["flow_uid"], None, row["spec"].get("labels"), trigger=variables, trigger_uid=uid, kind="poll"
            )
            polls.record(self.store, uid, [(f.item, f.version) for f in new], execution_id)
        log.info("trigger %s fired %s for %d new item(s)", uid, execution_id, len(new))
        try:
            trigger.after(ctx, new)
        except Exception as exc:  # fired and recorded: the next poll acts on them again
            log.warning("trigger %s fired %s but could not act on what it found: %s", uid, execution_id,
                        self.runs.renderer.masker.mask(str(exc)))  # fmt: skip
        else:
            if trigger.removes():
                polls.forget(self.store, uid, [f.item for f in new])
        self.runs.start(execution_id)
        return execution_id
