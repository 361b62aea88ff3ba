"""Compatibility: the applied state is now one module per table group (`sources`, `flows`, `triggers`, `syncs`,
`outbox`). Only `enqueue_status` is still imported from here, by modules of the executions pass
(gitsync/executions/recorder.py, gitsync/state/executions.py); remove this module once they import
`gitsync.state.outbox`.
"""

from __future__ import annotations

from gitsync.state.outbox import enqueue_status

__all__ = ["enqueue_status"]
