"""Which outbox rows the sender posts next: per-key ordering, coalescing and the rows in flight.

Per key (source, commit, context) only the latest unsent row is posted (older ones are superseded), and one
row of a key is in flight at a time, so the host sees a key's statuses in the order they were written.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gitsync.hosts import StatusPost
from gitsync.state import outbox
from gitsync.state.database import Store, now_iso

NO_PROVIDER = "no status provider configured"
SUPERSEDED = "not posted: a newer status of the same commit and context was queued"


@dataclass(frozen=True)
class Row:
    id: int
    source: str | None
    commit: str
    context: str
    state: str
    description: str
    target_url: str | None
    attempts: int

    @property
    def key(self) -> outbox.OutboxKey:
        return (self.source or "", self.commit, self.context)

    def post(self) -> StatusPost:
        return StatusPost(self.commit, self.context, self.state, self.description, self.target_url)


class Claims:
    """The rows due now, and the keys and rows in flight (shared by the dispatching and the posting threads)."""

    def __init__(self, store: Store, configured: Sequence[str], unavailable: Mapping[str, str], batch: int) -> None:
        self.store = store
        self.configured = list(configured)
        """Sources with a status provider; rows of the others stay as written."""
        self.unavailable = unavailable
        self.batch = batch
        self._keys: set[outbox.OutboxKey] = set()
        self._ids: set[int] = set()
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return len(self._keys)

    def claim(self, row: Row) -> None:
        with self._lock:
            self._keys.add(row.key)
            self._ids.add(row.id)

    def release(self, row: Row) -> None:
        with self._lock:
            self._keys.discard(row.key)
            self._ids.discard(row.id)

    def due(self, limit: int, paused: Collection[str] = ()) -> list[Row]:
        """The latest unsent row of each key that is due, oldest key first; older rows of a key are superseded.

        Keys in flight and sources in `paused` are skipped (their rows wait for the next pass).
        """
        now = now_iso()
        configured = set(self.configured)
        with self.store.atomic() as conn:
            records = outbox.unsent_rows(conn, self.batch * 20)
            latest: dict[outbox.OutboxKey, Any] = {}
            older: list[tuple[int, int]] = []
            with self._lock:
                in_flight = set(self._ids)
                busy = set(self._keys)
            for record in records:
                key = (record["source"] or "", record["commit_sha"], record["context"])
                if record["id"] in in_flight or key[0] not in configured:
                    continue  # rows of a source without a provider stay as written
                previous = latest.get(key)
                if previous is not None:
                    older.append((previous["id"], record["id"]))
                latest[key] = record
            outbox.supersede(conn, older, SUPERSEDED)
        due: list[Row] = []
        for key, record in latest.items():
            if key in busy or key[0] in paused:
                continue
            if record["next_attempt_at"] and record["next_attempt_at"] > now:
                continue
            due.append(_row(record))
            if len(due) >= limit:
                break
        return due

    def note_unconfigured(self) -> None:
        """Rows of a source without a provider stay unsent (not given up: configuring it later delivers them)."""
        outbox.note_unconfigured(self.store, self.configured, self.unavailable, NO_PROVIDER)

    def next_due_in(self) -> float | None:
        """Seconds until the next unsent row of a configured source is due (0: now; None: nothing to send)."""
        count, due = outbox.next_due_at(self.store, self.configured)
        if not count:
            return None
        if not due:
            return 0.0
        return max(0.0, (datetime.fromisoformat(due) - datetime.now(UTC)).total_seconds())


def _row(record: Any) -> Row:
    return Row(
        id=int(record["id"]),
        source=record["source"],
        commit=record["commit_sha"],
        context=record["context"],
        state=record["state"],
        description=record["description"] or "",
        target_url=record["target_url"],
        attempts=int(record["attempts"] or 0),
    )
