"""Who owns an execution: each process that runs executions registers as an owner and renews a lease.

A daemon and any number of `gitsync run` processes may share one database. Each writes its row in `owners`
(`Owner.here`) and renews it every `lease / 5` seconds on a thread of its own (`Lease`). Another process may
resolve an execution only when its owner is gone: the lease ran out (the owner stopped renewing: killed, frozen,
on another machine that died), or the owner ran on this machine and its pid no longer exists (a SIGKILLed
`gitsync run` is found at once). A process never resolves its own executions.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gitsync.errors import OwnerConflict, StateError
from gitsync.state import owners as owner_rows
from gitsync.state.database import Store
from gitsync.state.owners import describe

log = logging.getLogger("gitsync.runs")

DEFAULT_LEASE = 10.0
"""Seconds an owner may go without renewing before others count it gone (`lease_seconds` in the settings)."""


def this_machine() -> str:
    """Where pids can be compared: the host name and, on Linux, the pid namespace (containers sharing one host
    name but not their pids are different machines)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}/{namespace}"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


@dataclass(frozen=True)
class Owner:
    """One process's identity as an owner of executions."""

    id: str
    kind: str
    """`daemon` or `cli`."""
    label: str
    """What the process is, as messages name it: "gitsync daemon", "gitsync run acme.etl"."""
    host: str
    machine: str
    pid: int
    lease: float

    @classmethod
    def here(cls, kind: str, label: str, lease: float = DEFAULT_LEASE) -> Owner:
        host, pid = socket.gethostname(), os.getpid()
        return cls(f"{kind}:{host}:{pid}:{secrets.token_hex(4)}", kind, label, host, this_machine(), pid, lease)

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "host": self.host,
            "machine": self.machine,
            "pid": self.pid,
            "lease": self.lease,
        }


def is_gone(row: Mapping[str, Any], now: float, machine: str) -> bool:
    """Its lease ran out, or it ran on this machine and its process no longer exists."""
    if row["renewed_at"] + row["lease"] < now:
        return True
    return row["machine"] == machine and not process_alive(int(row["pid"]))


def gone_owners(store: Store, me: str | None = None) -> list[dict[str, Any]]:
    """The owner rows (other than `me`) whose process is gone: their executions may be resolved."""
    now, machine = time.time(), this_machine()
    return [row for row in owner_rows.all_owners(store) if row["id"] != me and is_gone(row, now, machine)]


class Lease:
    """This process's owner row, renewed on a thread until `stop()`."""

    def __init__(self, store: Store, owner: Owner) -> None:
        self.store = store
        self.owner = owner
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    @property
    def id(self) -> str:
        return self.owner.id

    def start(self) -> None:
        """Register (a daemon first claims the database: `claim_daemon`) and renew from now on."""
        if self._thread is not None:
            return
        if self.owner.kind == "daemon":
            self.claim_daemon()
        else:
            owner_rows.register(self.store, self.owner.row(), time.time())
        self._thread = threading.Thread(target=self._renew, name="lease", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """A clean stop: renewing ends and the row goes (executions it created but never started are freed)."""
        self._stop.set()
        if self._thread is None:
            return
        self._thread.join(timeout=5)
        self._thread = None
        try:
            owner_rows.release(self.store, self.owner.id)
        except StateError as exc:  # the lease runs out instead; others then resolve what is left
            log.warning("could not release this process's lease: %s", exc)

    def gone(self) -> list[dict[str, Any]]:
        """The other owners that are gone (their executions may be resolved)."""
        return gone_owners(self.store, self.owner.id)

    def live_daemon(self) -> dict[str, Any] | None:
        """The database's daemon when it is alive (and it is not this process)."""
        now, machine = time.time(), this_machine()
        for row in owner_rows.all_owners(self.store):
            if row["kind"] == "daemon" and row["id"] != self.owner.id and not is_gone(row, now, machine):
                return row
        return None

    def claim_daemon(self) -> None:
        """Become the database's one daemon, or raise `OwnerConflict` naming the live one (nothing written)."""
        gone = [row["id"] for row in self.gone()]
        other = owner_rows.claim_daemon(self.store, self.owner.row(), gone, time.time())
        if other is not None:
            raise OwnerConflict(
                f"another gitsync daemon owns this database: {describe(other)}, running since {other['started_at']}. "
                "One daemon runs per database; stop that one first, or give this one its own --db"
            )

    def _renew(self) -> None:
        interval = max(self.owner.lease / 5, 0.2)
        while not self._stop.wait(interval):
            try:
                if not owner_rows.renew(self.store, self.owner.row(), time.time()):
                    log.warning(
                        "this process's lease had run out; it is renewed again (its executions may have "
                        "been resolved as lost by another process)"
                    )
                if self._failing:
                    log.info("the lease is renewed again")
                self._failing = False
            except StateError as exc:
                if not self._failing:
                    log.warning("the lease cannot be renewed: %s", exc)
                self._failing = True
