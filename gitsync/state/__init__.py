"""The state package: the only code that writes SQL. One module per table group:

- `database`: the `Store` (connection, `atomic()`, migrations runner, `query_in`/`execute_in`);
- `schema`: the migrations;
- `sources`, `flows` (flows and revisions), `triggers`, `syncs`: the applied state a sync writes;
- `outbox`: commit statuses to post and what each host shows;
- `executions`, `task_runs`: execution rows; `fires`: scheduled fires; `trigger_windows`: the marks of Flow
  triggers' windows; `kv`: the executor's key-value store (its own file).

The applied-state functions are reachable from here too, so `from gitsync import state` gives `state.list_flows`,
`state.upsert_trigger`, ... (scripts and tests). They are imported on first use, not with the package, so a
command that needs one table module does not import the others; gitsync's own modules import the table module
they use.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "AppliedFlow": "flows",
    "RevisionRow": "flows",
    "TriggerRow": "triggers",
    "UidPaths": "flows",
    "applied_commit": "sources",
    "applied_flows": "flows",
    "applied_settings": "sources",
    "applied_uids": "flows",
    "count_flows": "flows",
    "count_triggers": "triggers",
    "delete_flow": "flows",
    "delete_triggers": "triggers",
    "enqueue_status": "outbox",
    "flows_owned_elsewhere": "flows",
    "history": "flows",
    "insert_sync": "syncs",
    "list_flows": "flows",
    "list_syncs": "syncs",
    "list_triggers": "triggers",
    "trigger_uids_of": "triggers",
    "upsert_source": "sources",
    "upsert_trigger": "triggers",
    "write_revision": "flows",
}
"""Each re-exported name and the table module that holds it."""

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'gitsync.state' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gitsync.state.{home}"), name)
