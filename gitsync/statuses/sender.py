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

The parts: `claims` (which rows are due, per-key ordering and coalescing, rows in flight), `delivery` (posting
one row and recording its outcome), `policy` (back-off, host health); this module runs them on threads.
The SQL is in `gitsync.state.outbox`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from gitsync.config import Settings
from gitsync.hosts import ProviderUnavailable, StatusProvider, provider_for
from gitsync.state import outbox
from gitsync.state.database import Store
from gitsync.statuses.claims import NO_PROVIDER, SUPERSEDED, Claims, Row
from gitsync.statuses.delivery import DUPLICATE, Delivery
from gitsync.statuses.policy import Backoff, HostHealth

if TYPE_CHECKING:
    import httpx

__all__ = ["DUPLICATE", "NO_PROVIDER", "SUPERSEDED", "Backoff", "HostHealth", "OutboxSender", "Row", "outbox_health"]

log = logging.getLogger("gitsync.outbox")


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
        self._claims = Claims(store, list(self.providers), self.unavailable, batch)
        self._delivery = Delivery(store, self.providers, self.hosts, self.backoff)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

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

    @property
    def requests(self) -> int:
        """Status requests sent to the hosts so far."""
        return self._delivery.requests

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

        def deliver_here(row: Row) -> None:
            handled.append(row)
            self._deliver(row)

        self._dispatch(deliver_here)
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

    def _dispatch(self, submit: Callable[[Row], Any]) -> None:
        self._claims.note_unconfigured()
        free = self.concurrency - self._claims.in_flight if self._pool is not None else self.batch
        if free <= 0:
            return
        paused = {name for name, host in self.hosts.items() if host.paused}
        for row in self._claims.due(free, paused):
            if self._stop.is_set():
                return
            if self.hosts[row.key[0]].paused:
                continue  # the host just asked us to wait (rate limit): the rest of its rows wait too
            self._claims.claim(row)
            submit(row)

    def _deliver(self, row: Row) -> None:
        try:
            self._delivery.deliver(row)
        finally:
            self._claims.release(row)

    # -- reading ------------------------------------------------------------------------------------------------

    def next_due_in(self) -> float | None:
        """Seconds until the next unsent row of a configured source is due (0: now; None: nothing to send)."""
        return self._claims.next_due_in()

    def health(self) -> dict[str, Any]:
        """A summary for /healthz: degraded when a key's latest status was given up or a host keeps failing."""
        return outbox_health(self.store, self.hosts, self.unavailable)


def outbox_health(
    store: Store, hosts: Mapping[str, HostHealth] | None = None, unavailable: Mapping[str, str] | None = None
) -> dict[str, Any]:
    counts = outbox.pending_counts(store)
    unresolved = outbox.unresolved_given_up(store, limit=5)
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
