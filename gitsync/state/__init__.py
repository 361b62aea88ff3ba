"""The state package: the only code that writes SQL. One module per table group:

- `database`: the `Store` (connection, `atomic()`, migrations runner, `query_in`/`execute_in`);
- `schema`: the migrations;
- `sources`, `flows` (flows and revisions), `triggers`, `syncs`: the applied state a sync writes;
- `outbox`: commit statuses to post and what each host shows;
- `executions`, `task_runs`: execution rows; `kv`: the executor's key-value store (its own file).

The applied-state functions are re-exported here, so `from gitsync import state` gives `state.list_flows`,
`state.upsert_trigger`, ... (scripts and tests); gitsync's modules import the table module they use.
"""

from gitsync.state.flows import (
    AppliedFlow,
    RevisionRow,
    UidPaths,
    applied_flows,
    applied_uids,
    count_flows,
    delete_flow,
    flows_owned_elsewhere,
    history,
    list_flows,
    write_revision,
)
from gitsync.state.outbox import enqueue_status
from gitsync.state.sources import applied_commit, applied_path, upsert_source
from gitsync.state.syncs import insert_sync, list_syncs
from gitsync.state.triggers import (
    TriggerRow,
    count_triggers,
    delete_triggers,
    list_triggers,
    trigger_uids_of,
    upsert_trigger,
)

__all__ = [
    "AppliedFlow",
    "RevisionRow",
    "TriggerRow",
    "UidPaths",
    "applied_commit",
    "applied_flows",
    "applied_path",
    "applied_uids",
    "count_flows",
    "count_triggers",
    "delete_flow",
    "delete_triggers",
    "enqueue_status",
    "flows_owned_elsewhere",
    "history",
    "insert_sync",
    "list_flows",
    "list_syncs",
    "list_triggers",
    "trigger_uids_of",
    "upsert_source",
    "upsert_trigger",
    "write_revision",
]
