"""The schema of the state database: one migration per released change, applied in order by `Store.migrate`.

A migration is `(name, step)`: the step is SQL text (one or more statements, split and run one by one inside
the migration's transaction) or a callable taking the `sqlite_utils.Database` of the store's connection (for
steps sqlite-utils does better, such as `table.add_column` or `table.transform`; it runs inside the same
transaction, so it must not commit). Versions are positions in this list, recorded in `_migrations`: never
reorder, renumber or change a released migration; a change is a new migration at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite_utils import Database

MigrationStep = str | Callable[["Database"], None]

MIGRATIONS: list[tuple[str, MigrationStep]] = [
    (
        "initial schema",
        """
        CREATE TABLE sources (
            name TEXT PRIMARY KEY,
            repo TEXT NOT NULL,             -- redacted: never holds credentials
            branch TEXT,
            path TEXT NOT NULL DEFAULT '',
            namespace_prefix TEXT NOT NULL,
            applied_commit TEXT,            -- the commit whose flows are active
            applied_at TEXT
        );
        CREATE TABLE flows (               -- the active revision of each flow
            uid TEXT PRIMARY KEY,          -- namespace.id
            source TEXT NOT NULL REFERENCES sources(name),
            namespace TEXT NOT NULL,
            id TEXT NOT NULL,
            revision INTEGER NOT NULL,
            commit_sha TEXT NOT NULL,
            path TEXT NOT NULL,
            blob TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX flows_source ON flows(source);
        CREATE TABLE revisions (           -- append-only history; a removal is a revision with deleted = 1
            uid TEXT NOT NULL,
            revision INTEGER NOT NULL,
            source TEXT NOT NULL,
            commit_sha TEXT NOT NULL,
            path TEXT NOT NULL,
            blob TEXT NOT NULL,
            author TEXT,
            message TEXT,
            applied_at TEXT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0,
            text TEXT,                     -- the flow's YAML at that revision (executions pin it)
            PRIMARY KEY (uid, revision)
        );
        CREATE TABLE triggers (
            uid TEXT PRIMARY KEY,          -- namespace.flow_id/trigger_id
            flow_uid TEXT NOT NULL,
            trigger_id TEXT NOT NULL,
            type TEXT NOT NULL,
            spec TEXT NOT NULL,            -- JSON of the trigger's properties
            cron TEXT,
            with_seconds INTEGER NOT NULL DEFAULT 0,
            timezone TEXT,
            disabled INTEGER NOT NULL DEFAULT 0,
            paused INTEGER NOT NULL DEFAULT 0,
            registered_at TEXT NOT NULL,
            last_scheduled_at TEXT,        -- the latest scheduled time decided (fired, or skipped as too late)
            next_fire TEXT
        );
        CREATE INDEX triggers_flow ON triggers(flow_uid);
        CREATE TABLE syncs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            source TEXT NOT NULL,
            commit_sha TEXT,
            previous_commit TEXT,
            outcome TEXT NOT NULL,         -- applied | unchanged | invalid | refused | failed
            started_at TEXT NOT NULL,
            ended_at TEXT,
            summary TEXT,
            errors TEXT NOT NULL DEFAULT '[]',
            warnings TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX syncs_source ON syncs(source, id);
        CREATE TABLE executions (
            id TEXT PRIMARY KEY,
            flow_uid TEXT NOT NULL,
            revision INTEGER NOT NULL,
            commit_sha TEXT NOT NULL,
            state TEXT NOT NULL,
            trigger_uid TEXT,
            scheduled_at TEXT,
            created_at TEXT NOT NULL,
            started_at TEXT,
            ended_at TEXT,
            inputs TEXT NOT NULL DEFAULT '{}',
            outputs TEXT NOT NULL DEFAULT '{}',
            labels TEXT NOT NULL DEFAULT '{}',
            trigger_vars TEXT NOT NULL DEFAULT '{}',
            error TEXT,
            UNIQUE (trigger_uid, scheduled_at)   -- a trigger fires at most once per scheduled time
        );
        CREATE INDEX executions_state ON executions(state);
        CREATE INDEX executions_flow ON executions(flow_uid, created_at);
        CREATE TABLE outbox (              -- commit statuses to post, written with what they report
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            source TEXT,
            commit_sha TEXT NOT NULL,
            context TEXT NOT NULL,
            state TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            target_url TEXT,
            created_at TEXT NOT NULL,
            sent_at TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            last_error TEXT,
            given_up INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX outbox_pending ON outbox(sent_at, given_up, next_attempt_at);
        """,
    ),
    (
        "task runs, logs, kill and resume requests",
        """
        CREATE TABLE task_runs (           -- one attempt of one task (a ForEach value is its own)
            id TEXT PRIMARY KEY,
            execution_id TEXT NOT NULL,
            task_id TEXT NOT NULL,
            task_type TEXT NOT NULL,
            parent_id TEXT,
            value TEXT,
            iteration INTEGER,
            attempt INTEGER NOT NULL DEFAULT 1,
            state TEXT NOT NULL,
            started_at TEXT,
            ended_at TEXT,
            outputs TEXT NOT NULL DEFAULT '{}',
            error TEXT
        );
        CREATE INDEX task_runs_execution ON task_runs(execution_id, id);
        CREATE TABLE logs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            execution_id TEXT NOT NULL,
            task_run_id TEXT,
            at TEXT NOT NULL,
            level TEXT NOT NULL,
            message TEXT NOT NULL
        );
        CREATE INDEX logs_execution ON logs(execution_id, id);
        ALTER TABLE executions ADD COLUMN source TEXT;
        ALTER TABLE executions ADD COLUMN parent_execution TEXT;
        ALTER TABLE executions ADD COLUMN kill_requested INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE executions ADD COLUMN resume_inputs TEXT;  -- set by `gitsync resume`; the paused run reads it
        """,
    ),
    (
        "outbox sender: coalescing and the last status posted per (commit, context)",
        """
        ALTER TABLE outbox ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0;  -- a newer row of the same key won
        CREATE INDEX outbox_key ON outbox(commit_sha, context, id);
        CREATE TABLE outbox_sent (         -- what the host shows for each key: never post the same thing twice
            source TEXT NOT NULL DEFAULT '',
            commit_sha TEXT NOT NULL,
            context TEXT NOT NULL,
            state TEXT NOT NULL,           -- the host's state, as posted (GitLab `running`, `failed`, ...)
            description TEXT NOT NULL,     -- as posted (truncated to the host's limit)
            outbox_id INTEGER NOT NULL,
            sent_at TEXT NOT NULL,
            PRIMARY KEY (source, commit_sha, context)
        );
        """,
    ),
    (
        "flow-level retries",
        """
        ALTER TABLE executions ADD COLUMN original_id TEXT;  -- the first execution of a retried chain
        ALTER TABLE executions ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
        """,
    ),
    (
        # The sync now stores the registry's canonical name; rows written earlier may hold a legacy alias
        # (or another spelling: type names match case-insensitively). The names are spelled out here, not
        # read from the registry, so that this migration's effect never changes.
        "triggers.type holds canonical type names",
        """
        UPDATE triggers SET type = 'io.kestra.plugin.core.trigger.Schedule'
          WHERE lower(type) IN ('io.kestra.plugin.core.trigger.schedule',
                                'io.kestra.core.models.triggers.types.schedule')
            AND type != 'io.kestra.plugin.core.trigger.Schedule';
        UPDATE triggers SET type = 'io.kestra.plugin.core.trigger.Flow'
          WHERE lower(type) IN ('io.kestra.plugin.core.trigger.flow',
                                'io.kestra.core.models.triggers.types.flow')
            AND type != 'io.kestra.plugin.core.trigger.Flow';
        UPDATE triggers SET type = 'io.kestra.plugin.core.trigger.Webhook'
          WHERE lower(type) IN ('io.kestra.plugin.core.trigger.webhook',
                                'io.kestra.core.models.triggers.types.webhook')
            AND type != 'io.kestra.plugin.core.trigger.Webhook';
        """,
    ),
    (
        # Rows written earlier: the kind is read from what they hold where it shows (a retry, a subflow, a fire, a
        # Flow trigger, a Webhook's body/headers/parameters); `gitsync run` and API runs left no trace, so NULL.
        # Scheduled runs did not record their source (so they posted no status): their revision's source.
        "executions record how they were started (trigger_kind), scheduled ones their source",
        """
        ALTER TABLE executions ADD COLUMN trigger_kind TEXT;  -- manual, api, webhook, schedule, flow, subflow, retry
        UPDATE executions SET trigger_kind = CASE
            WHEN original_id IS NOT NULL THEN 'retry'
            WHEN parent_execution IS NOT NULL THEN 'subflow'
            WHEN scheduled_at IS NOT NULL THEN 'schedule'
            WHEN trigger_uid IS NOT NULL THEN 'flow'
            WHEN json_valid(trigger_vars) AND json_type(trigger_vars, '$.headers') IS NOT NULL
                 AND json_type(trigger_vars, '$.parameters') IS NOT NULL THEN 'webhook'
          END;
        UPDATE executions SET source = (
            SELECT r.source FROM revisions r WHERE r.uid = executions.flow_uid AND r.revision = executions.revision)
          WHERE source IS NULL AND scheduled_at IS NOT NULL;
        """,
    ),
    (
        "execution owners and their leases",
        """
        CREATE TABLE owners (              -- the processes that run executions, each renewing its lease
            id TEXT PRIMARY KEY,           -- kind:host:pid:token
            kind TEXT NOT NULL,            -- daemon | cli
            host TEXT NOT NULL,            -- the host name, for messages
            machine TEXT NOT NULL,         -- host and pid namespace: where `pid` can be checked
            pid INTEGER NOT NULL,
            label TEXT NOT NULL,           -- what the process is, for messages ("gitsync run acme.etl")
            started_at TEXT NOT NULL,
            renewed_at REAL NOT NULL,      -- unix time of the last heartbeat
            lease REAL NOT NULL            -- seconds after renewed_at the owner counts as gone
        );
        ALTER TABLE executions ADD COLUMN owner TEXT;  -- owners.id of the process that runs it (NULL: nobody yet)
        CREATE INDEX executions_owner ON executions(owner);
        """,
    ),
    (
        "Flow trigger windows: what each upstream end satisfied (preconditions, MultipleCondition)",
        """
        CREATE TABLE trigger_window_marks (  -- an entry of a Flow trigger's window, satisfied by an upstream end
            trigger_uid TEXT NOT NULL,      -- triggers.uid
            window_id TEXT NOT NULL,        -- preconditions:<id> | condition:<MultipleCondition id>
            entry TEXT NOT NULL,            -- the entry's name and a digest of its content
            marked_at TEXT NOT NULL,        -- ISO-8601 UTC: when it was last satisfied
            execution_id TEXT,              -- the upstream execution that satisfied it
            PRIMARY KEY (trigger_uid, window_id, entry)
        );
        """,
    ),
    (
        "executions by flow are indexed in id order; created_at is in no index",
        """
        -- every read by flow orders by id (creation order); a scheduled fire written ahead gets its created_at
        -- when it is released, and 10,000 releases a second must not move 10,000 entries of an index
        DROP INDEX executions_flow;
        CREATE INDEX executions_flow ON executions(flow_uid, id);
        """,
    ),
    (
        "the schedule generation: bumped by every change of a trigger or a flow (SQL triggers)",
        """
        -- a fire written ahead (state AHEAD) is released without re-reading its trigger while no trigger and no
        -- flow changed since it was written; the bookkeeping columns (last_scheduled_at, next_fire) are no change
        CREATE TABLE schedule_generation (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
        INSERT INTO schedule_generation (id, n) VALUES (1, 0);
        CREATE TRIGGER schedule_trigger_changed
            AFTER UPDATE OF flow_uid, type, spec, cron, with_seconds, timezone, disabled, paused ON triggers
            BEGIN UPDATE schedule_generation SET n = n + 1; END;
        CREATE TRIGGER schedule_trigger_retired AFTER DELETE ON triggers
            BEGIN UPDATE schedule_generation SET n = n + 1; END;
        CREATE TRIGGER schedule_flow_changed AFTER UPDATE OF revision, commit_sha, source, disabled ON flows
            BEGIN UPDATE schedule_generation SET n = n + 1; END;
        CREATE TRIGGER schedule_flow_removed AFTER DELETE ON flows
            BEGIN UPDATE schedule_generation SET n = n + 1; END;
        """,
    ),
    (
        "the active executions of a trigger are indexed",
        """
        -- the overlap check of every scheduled fire (QUEUED behind an active run of its trigger) and of admitting a
        -- run looks up a trigger's active executions; without this index it walks the trigger's whole history (an
        -- every-second trigger ends 86,400 runs a day). The list is ACTIVE_STATES as the queries spell it
        -- (`sql_states`), so SQLite's planner matches it: tests/test_fires_ahead.py checks that it does.
        CREATE INDEX executions_trigger_active ON executions(trigger_uid)
            WHERE state IN ('CREATED','QUEUED','RUNNING','PAUSED','RESTARTED','KILLING','RETRYING');
        """,
    ),
    (
        "a trigger's bookkeeping is written ahead with its fire, with what undoes it",
        """
        -- writing a fire ahead (state AHEAD) advances its trigger's last_scheduled_at / next_fire in the same
        -- transaction, so the release at the fire time writes only the executions; ahead_at (the time written ahead)
        -- and ahead_last (last_scheduled_at before it) undo that advance when the AHEAD row is deleted unreleased.
        -- The advance holds only while an AHEAD row of the trigger at ahead_at exists or was released.
        ALTER TABLE triggers ADD COLUMN ahead_at TEXT;
        ALTER TABLE triggers ADD COLUMN ahead_last TEXT;
        """,
    ),
    (
        "the executions of a trigger not ended are indexed (ended_at IS NULL), not its active ones (by state)",
        """
        -- the overlap check of a fire reads its trigger's executions not ended, whose state then says which are
        -- active. An index whose WHERE names `state` is rewritten by every change of state, so releasing 10,000
        -- fires written ahead (AHEAD -> QUEUED) rewrote 10,000 of its entries: half the release's time.
        -- `ended_at` is written once, when an execution ends (every way it ends writes it).
        DROP INDEX executions_trigger_active;
        CREATE INDEX executions_trigger_open ON executions(trigger_uid) WHERE ended_at IS NULL;
        """,
    ),
    (
        "a sync keeps the plan it applied or refused",
        """
        -- the markdown of the pull-request comment (`sync/render.render_markdown`): the sync history shows it
        ALTER TABLE syncs ADD COLUMN plan TEXT;
        """,
    ),
    (
        "replays: what an execution replays, and where each task run's outputs are in loops",
        """
        -- a replay (trigger_kind 'replay') is a new execution of the revision an ended one ran, run again from one of
        -- its task runs; what ended done before that one started is carried over (`runner/engine/replay`)
        ALTER TABLE executions ADD COLUMN replay_of TEXT;    -- the execution it replays
        ALTER TABLE executions ADD COLUMN replay_from TEXT;  -- that execution's task run it runs again from
        -- the values of the loops a task run ran in (a JSON list, outermost first; NULL outside loops): where its
        -- outputs are (`outputs.t.<value>.<key>`) when a replay carries it over
        ALTER TABLE task_runs ADD COLUMN loop_values TEXT;
        """,
    ),
    (
        "the dashboard's reads of ended executions are indexed: counts by day and state, the failures in id order",
        """
        -- an execution's created_at, state and flow do not change once it has ended (ended_at is written once, when
        -- it ends), so an index WHERE ended_at IS NOT NULL gets one entry per execution, written when it ends: no
        -- state change before the end and no release of fires written ahead (AHEAD -> QUEUED) touches these.
        -- The dashboard's executions by day and state: read in group order from the index alone (the expression is
        -- the one `execution_pages.counts_by_day` groups by); on 100,000 executions 37 ms as a table scan, 4 ms so.
        CREATE INDEX executions_ended_day ON executions(substr(created_at, 1, 10), state) WHERE ended_at IS NOT NULL;
        -- The failing flows: failures newest first, each kept when no later run of its flow has ended, stopping at
        -- the page's size (`execution_pages.failing_flows`), instead of the latest end of every active flow.
        CREATE INDEX executions_failed ON executions(id)
            WHERE ended_at IS NOT NULL AND state IN ('FAILED', 'KILLED', 'WARNING');
        """,
    ),
    (
        "polling triggers: what each one fired, recorded with the execution it fired (exactly once)",
        """
        -- a polling trigger (an S3 bucket's new objects...) fires each version of an item once: the item is written
        -- here in the transaction that writes the execution, so a restart neither fires it again nor loses it
        CREATE TABLE trigger_polls (
            trigger_uid TEXT NOT NULL,
            item TEXT NOT NULL,            -- what was found: s3://bucket/key
            version TEXT NOT NULL,         -- which version of it fired (etag@lastModified)
            execution_id TEXT NOT NULL,
            fired_at TEXT NOT NULL,
            PRIMARY KEY (trigger_uid, item)
        );
        """,
    ),
    (
        "the schedule generation moves when a trigger is added too (the poller re-reads its triggers on a move)",
        """
        CREATE TRIGGER schedule_trigger_added AFTER INSERT ON triggers
            BEGIN UPDATE schedule_generation SET n = n + 1; END;
        """,
    ),
]
