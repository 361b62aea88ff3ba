"""The kill watcher: one thread per process that turns kills written by other processes into cancel events.

It must survive a read that fails (else every later kill from another process is ignored) and stop when the
store is closed. The failure here is real: another connection renames the table the watcher reads.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest
from test_state_executions import new, set_state
from test_state_executions import store as store

from gitsync.executions.control import POLL, ControlRequests
from gitsync.state.database import Store
from runner.states import State


def _watched(control: ControlRequests, store: Store) -> tuple[str, threading.Event]:
    execution_id = new(store)
    set_state(store, execution_id, State.RUNNING)
    event = threading.Event()
    control.watch(execution_id, event)
    return execution_id, event


def test_a_failed_read_is_logged_once_and_later_kills_still_arrive(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    control = ControlRequests(store)
    execution_id, event = _watched(control, store)
    other = sqlite3.connect(store.path, isolation_level=None)
    caplog.set_level(logging.INFO, logger="gitsync.runs")
    other.execute("ALTER TABLE executions RENAME TO executions_away")
    try:
        threading.Event().wait(POLL * 5)  # several polls fail
        watcher = control._watcher
        assert watcher is not None and watcher.is_alive()
    finally:
        other.execute("ALTER TABLE executions_away RENAME TO executions")
        other.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot read kill requests" in warnings[0] and "no such table" in warnings[0]
    ControlRequests(store).request_kill(execution_id)  # as `gitsync kill` in another process writes it
    assert event.wait(POLL * 10), "the kill written after the failure never reached the execution"
    assert any(r.getMessage() == "kill requests are read again" for r in caplog.records)


def test_the_watcher_stops_when_the_store_is_closed(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    control = ControlRequests(store)
    _, event = _watched(control, store)
    watcher = control._watcher
    assert watcher is not None
    store.close()
    watcher.join(POLL * 10)
    assert not watcher.is_alive() and control._watcher is None and not event.is_set()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_new_watch_after_the_watcher_ended_starts_another(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    control = ControlRequests(store)
    first = threading.Event()
    control.watch("a", first)  # no such row: the watcher stops it at its first poll (its row is gone)
    assert first.wait(POLL * 10)
    ended = control._watcher
    if ended is not None:
        ended.join(POLL * 10)
    second = threading.Event()
    control.watch("b", second)
    assert second.wait(POLL * 10)
    store.close()
