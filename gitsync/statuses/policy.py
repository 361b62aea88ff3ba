"""Back-off policy and per-host health of the status sender (no I/O)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any


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


@dataclass
class HostHealth:
    """What the sender knows of one source's host; `paused_until` (monotonic) holds its rows after a rate limit."""

    provider: str
    sent: int = 0
    failures: int = 0
    last_error: str | None = None
    last_error_at: str | None = None
    last_sent_at: str | None = None
    paused_until: float = 0.0

    @property
    def paused(self) -> bool:
        return self.paused_until > time.monotonic()

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
