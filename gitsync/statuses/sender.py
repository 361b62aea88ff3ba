"""The status sender: drains the outbox to the git hosts (DESIGN.md invariant 5: nothing is lost).

Rows are written by syncs and executions in the transaction of what they report; this module only reads and
updates them, in short transactions, from its own threads, so a slow or failing host never slows a sync or a run.

Per key (source, commit, context):
- only the latest unsent row is posted; older unsent rows are marked `superseded` and never posted (coalescing);
- one row of a key is in flight at a time, so the host sees a key's statuses in the order they were written;
- a row whose host state and description equal the last ones posted for its key (table `outbox_sent`) is not
  posted again (it is marked superseded, with the reason);
- 5xx, 409, timeouts, connection errors and rate limits (429, or 403 with the rate-limit headers) are retried
  with exponential back-off and jitter, waiting at least what `Retry-After` / `x-ratelimit-reset` /
  `RateLimit-Reset` ask (a rate limit pauses the whole host, not just the row);
- 400/401/403/404/410/422 give up at once, with the host's reason in `last_error`.

All state is in SQLite (`next_attempt_at`, `attempts`, `outbox_sent`): a new sender on the same database resumes.
Different keys are posted over a few concurrent connections (`concurrency`); see bench/bench_statuses.py.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from gitsync.config import Settings
from gitsync.hosts import HostError, ProviderUnavailable, StatusPost, StatusProvider, provider_for
from gitsync.redact import redact
from gitsync.state.database import Store, iso, now_iso

log = logging.getLogger("gitsync.outbox")

NO_PROVIDER = "no status provider configured"
DUPLICATE = "not posted: the host already shows this state and description"
SUPERSEDED = "not posted: a newer status of the same commit and context was queued"


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with jitter: attempt n waits base·2^(n-1), capped, times a factor in [1-jitter, 1]."""

    base: float = 1.0
    cap: float = 300.0
    jitter: float = 0.5

    def delay(self, attempts: int, floor: float | None = None) -> float:
        raw = min(self.cap, self.base * (2 ** max(0, attempts - 1)))
        wait = raw * (1 - self.jitter * random.random())
        return max(wait, floor or 0.0)


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
    def key(self) -> tuple[str, str, str]:
        return (self.source or "", self.commit, self.context)

    def post(self) -> StatusPost:
        return StatusPost(self.commit, self.context, self.state, self.description, self.target_url)


@dataclass
class HostHealth:
    provider: str
    sent: int = 0
    failures: int = 0
    last_error: str | None = None
    last_error_at: str | None = None
    last_sent_at: str | None = None
    paused_until: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        paused = max(0.0, self.paused_until - time.monotonic())
        return {
            "provider": self.provider,
            "sent": self.sent,
            "consecutive_failures": self.failures,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_sent_at": self.last_sent_at,
            "paused_for_s": round(paused, 1) if paused else None,
        }


@dataclass
class _Flight:
    keys: set[tuple[str, str, str]] = field(default_factory=set)
    ids: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class OutboxSender:
    """Posts the outbox. `start()` runs it on its own threads; `drain_once()` does one pass (tests, scripts)."""

    def __init__(
        self,
        store: Store,
        providers: Mapping[str, StatusProvider],
        unavailable: Mapping[str, str] | None = None,
        *,
        concurrency: int = 8,
        backoff: Backoff | None = None,
        poll_interval: float = 0.5,
        batch: int = 500,
    ) -> None:
        self.store = store
        self.providers = dict(providers)
        self.unavailable = dict(unavailable or {})
        """Sources whose rows stay unsent, with the reason (no `status:` block, missing token)."""
        self.concurrency = max(1, concurrency)
        self.backoff = backoff or Backoff()
        self.poll_interval = poll_interval
        self.batch = batch
        self.hosts = {name: HostHealth(p.name) for name, p in self.providers.items()}
        self.requests = 0
        self._flight = _Flight()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._secrets = [p.token for p in self.providers.values()]

    @classmethod
    def from_settings(
        cls, store: Store, settings: Settings, client: httpx.Client | None = None, **options: Any
    ) -> OutboxSender:
        """One provider per source with a `status:` block; the others are listed with their reason."""
        providers: dict[str, StatusProvider] = {}
        unavailable: dict[str, str] = {}
        for source in settings.sources:
            try:
                providers[source.name] = provider_for(source, client=client)
            except ProviderUnavailable as exc:
                unavailable[source.name] = str(exc)
        return cls(store, providers, unavailable, **options)

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="status-post")
        self._thread = threading.Thread(target=self._loop, name="status-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop taking rows; requests in flight finish (bounded by the providers' timeout) and are recorded."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        self.stop()
        for provider in self.providers.values():
            provider.close()

    def wake(self) -> None:
        """New rows were written: look now rather than at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._dispatch(self._submit)
            except Exception:  # a bug must not stop the sender: logged, retried at the next poll
                log.exception("status sender pass failed")
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def _submit(self, row: Row) -> None:
        assert self._pool is not None
        future = self._pool.submit(self._deliver, row)
        future.add_done_callback(lambda _f: self._wake.set())

    # -- one pass -----------------------------------------------------------------------------------------------

    def drain_once(self) -> int:
        """One pass on the calling thread: post every key that is due (sequentially). Returns rows handled."""
        handled: list[Row] = []
        self._dispatch(lambda row: (handled.append(row), self._deliver(row)))
        return len(handled)

    def drain(self, timeout: float = 30.0) -> bool:
        """Passes until nothing is due now or later (True), or `timeout` seconds pass (False). Waits for back-off."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.drain_once()
            wait = self.next_due_in()
            if wait is None:
                return True
            time.sleep(min(max(wait, 0.005), max(0.0, deadline - time.monotonic()), 0.25))
        return False

    def _dispatch(self, submit: Any) -> None:
        self._mark_unconfigured()
        free = self.concurrency - len(self._flight.keys) if self._pool is not None else self.batch
        if free <= 0:
            return
        for row in self._due_rows(free):
            if self._stop.is_set():
                return
            if self.hosts[row.key[0]].paused_until > time.monotonic():
                continue  # the host just asked us to wait (rate limit): the rest of its rows wait too
            with self._flight.lock:
                self._flight.keys.add(row.key)
                self._flight.ids.add(row.id)
            submit(row)

    def _due_rows(self, limit: int) -> list[Row]:
        """The latest unsent row of each key that is due, oldest key first; older rows of a key are superseded."""
        now = now_iso()
        paused = {name for name, host in self.hosts.items() if host.paused_until > time.monotonic()}
        with self.store.atomic() as conn:
            rows = conn.execute(
                """SELECT id, source, commit_sha, context, state, description, target_url, attempts, next_attempt_at
                   FROM outbox WHERE sent_at IS NULL AND given_up = 0 AND superseded = 0
                   ORDER BY id LIMIT ?""",
                (self.batch * 20,),
            ).fetchall()
            latest: dict[tuple[str, str, str], Any] = {}
            older: list[tuple[int, Any]] = []
            with self._flight.lock:
                in_flight = set(self._flight.ids)
                busy = set(self._flight.keys)
            for record in rows:
                key = (record["source"] or "", record["commit_sha"], record["context"])
                if record["id"] in in_flight or key[0] not in self.providers:
                    continue  # rows of a source without a provider stay as written
                previous = latest.get(key)
                if previous is not None:
                    older.append((previous["id"], record["id"]))
                latest[key] = record
            self._supersede(conn, older, latest)
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

    def _supersede(self, conn: Any, older: list[tuple[int, int]], latest: Mapping[Any, Any]) -> None:
        """Mark older rows superseded; the newer row keeps the later of their retry times (back-off holds)."""
        if not older:
            return
        conn.executemany(
            "UPDATE outbox SET superseded = 1, last_error = ? WHERE id = ?", [(SUPERSEDED, old) for old, _ in older]
        )
        conn.executemany(
            """UPDATE outbox SET next_attempt_at = (SELECT o.next_attempt_at FROM outbox o WHERE o.id = ?)
               WHERE id = ? AND (SELECT o.next_attempt_at FROM outbox o WHERE o.id = ?) >
                                 COALESCE(next_attempt_at, '')""",
            [(old, new, old) for old, new in older],
        )

    def _mark_unconfigured(self) -> None:
        """Rows of a source without a provider stay unsent (not given up: configuring it later delivers them)."""
        known = list(self.providers)
        marks = ",".join("?" * len(known)) or "NULL"
        with self.store.atomic() as conn:
            rows = conn.execute(
                f"""SELECT id, source FROM outbox WHERE sent_at IS NULL AND given_up = 0 AND superseded = 0
                    AND last_error IS NULL AND (source IS NULL OR source NOT IN ({marks}))""",
                known,
            ).fetchall()
            conn.executemany(
                "UPDATE outbox SET last_error = ? WHERE id = ?",
                [(self.unavailable.get(r["source"] or "", NO_PROVIDER), r["id"]) for r in rows],
            )

    # -- one row ------------------------------------------------------------------------------------------------

    def _deliver(self, row: Row) -> None:
        try:
            self._post(row)
        except Exception as exc:  # a bug in a provider: retried like a transient error, and logged
            log.exception("posting status %s failed", row.id)
            self._retry(row, HostError(f"{type(exc).__name__}: {exc}"))
        finally:
            with self._flight.lock:
                self._flight.keys.discard(row.key)
                self._flight.ids.discard(row.id)

    def _post(self, row: Row) -> None:
        provider = self.providers[row.key[0]]
        post = row.post()
        try:
            host_state, description = provider.host_state(post.state), provider.describe(post)
        except HostError as exc:
            self._give_up(row, exc)
            return
        if self._already_shown(row, host_state, description):
            self._finish(row, superseded=True, note=DUPLICATE)
            return
        try:
            with self._flight.lock:
                self.requests += 1
            provider.post_status(post)
        except HostError as exc:
            if exc.permanent:
                self._give_up(row, exc)
            else:
                self._retry(row, exc)
            return
        self._sent(row, host_state, description)

    def _already_shown(self, row: Row, state: str, description: str) -> bool:
        last = self.store.query_one(
            "SELECT state, description FROM outbox_sent WHERE source = ? AND commit_sha = ? AND context = ?", row.key
        )
        return last is not None and (last["state"], last["description"]) == (state, description)

    def _sent(self, row: Row, state: str, description: str) -> None:
        sent_at = now_iso()
        with self.store.atomic() as conn:
            conn.execute(
                "UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = NULL, next_attempt_at = NULL "
                "WHERE id = ?",
                (sent_at, row.id),
            )
            conn.execute(
                """INSERT INTO outbox_sent (source, commit_sha, context, state, description, outbox_id, sent_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (source, commit_sha, context) DO UPDATE SET state = excluded.state,
                     description = excluded.description, outbox_id = excluded.outbox_id, sent_at = excluded.sent_at""",
                (*row.key, state, description, row.id, sent_at),
            )
        host = self.hosts[row.key[0]]
        host.sent, host.failures, host.last_sent_at = host.sent + 1, 0, sent_at

    def _finish(self, row: Row, superseded: bool, note: str) -> None:
        with self.store.atomic() as conn:
            conn.execute(
                "UPDATE outbox SET superseded = ?, last_error = ? WHERE id = ?", (int(superseded), note, row.id)
            )

    def _give_up(self, row: Row, error: HostError) -> None:
        reason = self._reason(error)
        log.warning("giving up on status %s (%s %s on %s): %s", row.id, row.context, row.state, row.commit, reason)
        with self.store.atomic() as conn:
            conn.execute(
                "UPDATE outbox SET given_up = 1, attempts = attempts + 1, last_error = ?, next_attempt_at = NULL "
                "WHERE id = ?",
                (reason, row.id),
            )
        self._note_failure(row, reason)

    def _retry(self, row: Row, error: HostError) -> None:
        attempts = row.attempts + 1
        wait = self.backoff.delay(attempts, floor=error.retry_after)
        reason = f"{self._reason(error)} (attempt {attempts}, next in {wait:.1f}s)"
        if error.retry_after is not None and error.status in (403, 429):
            self.hosts[row.key[0]].paused_until = time.monotonic() + wait
        with self.store.atomic() as conn:
            conn.execute(
                "UPDATE outbox SET attempts = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
                (attempts, reason, iso(datetime.now(UTC) + timedelta(seconds=wait)), row.id),
            )
        self._note_failure(row, reason)

    def _note_failure(self, row: Row, reason: str) -> None:
        host = self.hosts[row.key[0]]
        host.failures += 1
        host.last_error, host.last_error_at = reason, now_iso()

    def _reason(self, error: HostError) -> str:
        return redact(str(error), self._secrets)[:500]

    # -- reading ------------------------------------------------------------------------------------------------

    def next_due_in(self) -> float | None:
        """Seconds until the next unsent row of a configured source is due (0: now; None: nothing to send)."""
        known = list(self.providers)
        if not known:
            return None
        marks = ",".join("?" * len(known))
        row = self.store.query_one(
            f"""SELECT min(COALESCE(next_attempt_at, '')) AS due, count(*) AS n FROM outbox
                WHERE sent_at IS NULL AND given_up = 0 AND superseded = 0 AND source IN ({marks})""",
            known,
        )
        if not row or not row["n"]:
            return None
        if not row["due"]:
            return 0.0
        return max(0.0, (datetime.fromisoformat(row["due"]) - datetime.now(UTC)).total_seconds())

    def health(self) -> dict[str, Any]:
        """A summary for /healthz: degraded when a key's latest status was given up or a host keeps failing."""
        return outbox_health(self.store, self.hosts, self.unavailable)


def outbox_health(
    store: Store, hosts: Mapping[str, HostHealth] | None = None, unavailable: Mapping[str, str] | None = None
) -> dict[str, Any]:
    counts = (
        store.query_one(
            """SELECT
             sum(sent_at IS NULL AND given_up = 0 AND superseded = 0) AS pending,
             sum(sent_at IS NULL AND given_up = 0 AND superseded = 0 AND attempts > 0) AS retrying,
             sum(given_up) AS given_up,
             min(CASE WHEN sent_at IS NULL AND given_up = 0 AND superseded = 0 THEN created_at END) AS oldest_pending_at
           FROM outbox"""
        )
        or {}
    )
    unresolved = store.query(
        """SELECT o.commit_sha AS commit_sha, o.context AS context, o.last_error AS last_error FROM outbox o
           WHERE o.given_up = 1 AND NOT EXISTS (
             SELECT 1 FROM outbox n WHERE n.commit_sha = o.commit_sha AND n.context = o.context
               AND COALESCE(n.source, '') = COALESCE(o.source, '') AND n.id > o.id AND n.sent_at IS NOT NULL)
           ORDER BY o.id DESC LIMIT 5"""
    )
    host_view = {name: h.as_dict() for name, h in (hosts or {}).items()}
    failing = any(h["consecutive_failures"] >= 5 for h in host_view.values())
    return {
        "status": "degraded" if unresolved or failing else "ok",
        "pending": int(counts.get("pending") or 0),
        "retrying": int(counts.get("retrying") or 0),
        "given_up": int(counts.get("given_up") or 0),
        "oldest_pending_at": counts.get("oldest_pending_at"),
        "given_up_recent": [
            {"commit": r["commit_sha"], "context": r["context"], "last_error": r["last_error"]} for r in unresolved
        ],
        "hosts": host_view,
        "unconfigured": dict(unavailable or {}),
    }


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
