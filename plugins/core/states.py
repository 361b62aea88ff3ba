"""Execution state names, as triggers and conditions spell them."""

from __future__ import annotations

from typing import Literal

StateName = Literal[
    "CREATED", "RUNNING", "PAUSED", "RESTARTED", "KILLING", "SUCCESS", "WARNING", "FAILED", "KILLED",
    "CANCELLED", "QUEUED", "RETRYING", "RETRIED", "SKIPPED",
]  # fmt: skip
