"""Posting one outbox row to its host and recording the outcome (sent, duplicate, given up, retried).

- a row whose host state and description equal the last ones posted for its key (table `outbox_sent`) is not
  posted again (it is marked superseded, with the reason);
- 5xx, 409, timeouts, connection errors and rate limits (429, or 403 with the rate-limit headers) are retried
  with exponential back-off and jitter, waiting at least what the host asks (a rate limit pauses the whole
  host, not just the row);
- 400/401/403/404/410/422 give up at once, with the host's reason in `last_error`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from gitsync.hosts import HostError, StatusProvider
from gitsync.redact import redact
from gitsync.state import outbox
from gitsync.state.database import Store, iso, now_iso
from gitsync.statuses.claims import Row
from gitsync.statuses.policy import Backoff, HostHealth

log = logging.getLogger("gitsync.outbox")

DUPLICATE = "not posted: the host already shows this state and description"


class Delivery:
    """Posts rows to their source's provider; thread-safe (the sender posts different keys concurrently)."""

    def __init__(
        self, store: Store, providers: Mapping[str, StatusProvider], hosts: Mapping[str, HostHealth], backoff: Backoff
    ) -> None:
        self.store = store
        self.providers = providers
        self.hosts = hosts
        self.backoff = backoff
        self.requests = 0
        self._lock = threading.Lock()
        self._secrets = [p.token for p in providers.values()]

    def deliver(self, row: Row) -> None:
        try:
            self._post(row)
        except Exception as exc:  # a bug in a provider: retried like a transient error, and logged
            log.exception("posting status %s failed", row.id)
            self._retry(row, HostError(f"{type(exc).__name__}: {exc}"))

    def _post(self, row: Row) -> None:
        provider = self.providers[row.key[0]]
        post = row.post()
        try:
            host_state, description = provider.host_state(post.state), provider.describe(post)
        except HostError as exc:
            self._give_up(row, exc)
            return
        if outbox.last_sent(self.store, row.key) == (host_state, description):
            outbox.close_unposted(self.store, row.id, superseded=True, note=DUPLICATE)
            return
        try:
            with self._lock:
                self.requests += 1
            provider.post_status(post)
        except HostError as exc:
            if exc.permanent:
                self._give_up(row, exc)
            else:
                self._retry(row, exc)
            return
        self._sent(row, host_state, description)

    def _sent(self, row: Row, state: str, description: str) -> None:
        sent_at = now_iso()
        outbox.record_sent(self.store, row.id, row.key, state, description, sent_at)
        host = self.hosts[row.key[0]]
        host.sent, host.failures, host.last_sent_at = host.sent + 1, 0, sent_at

    def _give_up(self, row: Row, error: HostError) -> None:
        reason = self._reason(error)
        log.warning("giving up on status %s (%s %s on %s): %s", row.id, row.context, row.state, row.commit, reason)
        outbox.give_up(self.store, row.id, reason)
        self._note_failure(row, reason)

    def _retry(self, row: Row, error: HostError) -> None:
        attempts = row.attempts + 1
        wait = self.backoff.delay(attempts, floor=error.retry_after)
        reason = f"{self._reason(error)} (attempt {attempts}, next in {wait:.1f}s)"
        if error.retry_after is not None and error.status in (403, 429):
            self.hosts[row.key[0]].paused_until = time.monotonic() + wait
        outbox.schedule_retry(self.store, row.id, attempts, reason, iso(datetime.now(UTC) + timedelta(seconds=wait)))
        self._note_failure(row, reason)

    def _note_failure(self, row: Row, reason: str) -> None:
        host = self.hosts[row.key[0]]
        host.failures += 1
        host.last_error, host.last_error_at = reason, now_iso()

    def _reason(self, error: HostError) -> str:
        return redact(str(error), self._secrets)[:500]
