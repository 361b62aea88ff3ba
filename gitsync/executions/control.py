"""Kill and resume: the events that stop an execution in this process, and requests other processes write.

`gitsync kill` and `gitsync resume` may run in another process than the execution: they write the request to
the database. One watcher thread turns the kill requests of every execution running here into their events
(one query per poll, whatever their number); a paused execution polls for its resume inputs.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from gitsync.errors import StateError
from gitsync.executions.errors import RunError
from gitsync.executions.ownership import gone_owners
from gitsync.state import control as control_rows
from gitsync.state.database import Store
from runner.states import State

POLL = 0.2
"""Seconds between two looks at the database for kill and resume requests."""

log = logging.getLogger("gitsync.runs")


class ControlRequests:
    """Cancel events of the executions this process runs, and the kill/resume requests from any process."""

    def __init__(self, store: Store, owner: str | None = None) -> None:
        self.store = store
        self.owner = owner
        """This process's owner id: an execution another process resolved (no longer ours) is stopped too."""
        self._cancel: dict[str, threading.Event] = {}
        self._watched: dict[str, threading.Event] = {}
        self._watcher: threading.Thread | None = None
        self._watch_lock = threading.Lock()

    # -- events in this process ---------------------------------------------------------------------------------

    def event(self, execution_id: str, given: threading.Event | None = None) -> threading.Event:
        """The execution's cancel event: `given` when there is one (it replaces any other), else its own."""
        if given is None:
            return self._cancel.setdefault(execution_id, threading.Event())
        self._cancel[execution_id] = given
        return given

    def forget(self, execution_id: str) -> None:
        self._cancel.pop(execution_id, None)

    def cancel(self, execution_id: str) -> None:
        """Stop an execution this process runs (its event is set); nothing when it runs elsewhere."""
        event = self._cancel.get(execution_id)
        if event is not None:
            event.set()

    def cancel_all(self) -> None:
        for event in list(self._cancel.values()):
            event.set()

    # -- requests, from any process -----------------------------------------------------------------------------

    def request_kill(self, execution_id: str) -> State:
        """Kill a running execution (its tasks are stopped) or cancel one that has not started. An execution whose
        process is gone (a `gitsync run` that was SIGKILLed) is KILLED at once: nothing of it runs any more."""
        gone = [row["id"] for row in gone_owners(self.store)]
        found, written = control_rows.request_kill(self.store, execution_id, gone)
        if found is None:
            raise RunError(f"no execution {execution_id!r}")
        if written is None:
            raise RunError(f"execution {execution_id} already ended ({found.value})")
        if written == State.KILLING:
            event = self._cancel.get(execution_id)
            if event is not None:
                event.set()
        return written

    def request_resume(self, execution_id: str, inputs: dict[str, Any] | None = None) -> None:
        found = control_rows.request_resume(self.store, execution_id, inputs or {})
        if found is None:
            raise RunError(f"no execution {execution_id!r}")
        if found != State.PAUSED:
            raise RunError(f"execution {execution_id} is {found.value}, not PAUSED")

    def wait_for_resume(self, execution_id: str, cancelled: threading.Event) -> dict[str, Any] | None:
        """The resume inputs once a resume is requested; None when the execution is killed or cancelled first."""
        while not cancelled.wait(POLL):
            stop, inputs = control_rows.take_resume(self.store, execution_id)
            if stop:
                return None
            if inputs is not None:
                return inputs
        return None

    # -- the kill watcher ---------------------------------------------------------------------------------------

    def watch(self, execution_id: str, event: threading.Event) -> None:
        """Have the shared watcher turn a kill written to the database (by another process) into `event`."""
        with self._watch_lock:
            self._watched[execution_id] = event
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch_requests, daemon=True, name="kill-watcher")
                self._watcher.start()

    def unwatch(self, execution_id: str) -> None:
        with self._watch_lock:
            self._watched.pop(execution_id, None)

    def _watch_requests(self) -> None:
        """One thread for every running execution; it ends when none runs, or when the store is closed.

        A read that fails (the file locked or unreadable for a while) is logged once and tried again at the next
        poll: the thread must outlive it, or kills from other processes would be ignored from then on.
        """
        failing = False
        while True:
            time.sleep(POLL)
            with self._watch_lock:
                if not self._watched or self.store.closed:
                    self._watcher = None
                    return
                watched = dict(self._watched)
            try:
                stop = control_rows.kill_requested(self.store, list(watched), self.owner)
            except StateError as exc:
                if not failing:
                    log.warning("cannot read kill requests (tried again every %.1f s): %s", POLL, exc)
                failing = True
                continue
            if failing:
                log.info("kill requests are read again")
                failing = False
            for execution_id in stop:
                watched[execution_id].set()
                self.unwatch(execution_id)
