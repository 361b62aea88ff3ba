"""The state database: migrations (recorded, each in one transaction, SQL or a sqlite-utils callable)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlite_utils import Database

from gitsync.state import database, schema
from gitsync.state.database import Store, now_iso

LEGACY = {
    "io.kestra.core.models.triggers.types.Schedule": "io.kestra.plugin.core.trigger.Schedule",
    "io.kestra.core.models.triggers.types.Flow": "io.kestra.plugin.core.trigger.Flow",
    "IO.KESTRA.CORE.MODELS.TRIGGERS.TYPES.WEBHOOK": "io.kestra.plugin.core.trigger.Webhook",
    "io.kestra.plugin.core.trigger.schedule": "io.kestra.plugin.core.trigger.Schedule",
    "io.kestra.plugin.scripts.SomethingElse": "io.kestra.plugin.scripts.SomethingElse",
}


def test_a_database_of_the_previous_release_gets_canonical_trigger_types(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    with store.atomic() as conn:
        for n, legacy in enumerate(LEGACY):
            conn.execute(
                "INSERT INTO triggers (uid, flow_uid, trigger_id, type, spec, registered_at) VALUES (?, ?, ?, ?, ?, ?)",
                (f"ns.f/t{n}", "ns.f", f"t{n}", legacy, "{}", now_iso()),
            )
        conn.execute("DELETE FROM _migrations WHERE version = 5")  # as written before migration 5 existed
    store.close()
    reopened = Store(tmp_path / "state.db")
    try:
        assert reopened.schema_version == len(schema.MIGRATIONS)
        types = [r["type"] for r in reopened.query("SELECT type FROM triggers ORDER BY trigger_id")]
        assert types == list(LEGACY.values())
    finally:
        reopened.close()


def test_a_callable_migration_runs_in_its_transaction_and_a_failure_rolls_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Store(tmp_path / "state.db").close()
    released = len(schema.MIGRATIONS)

    def add_note(db: Database) -> None:
        db.table("flows").add_column("note", str)

    def broken(db: Database) -> None:
        db.table("flows").add_column("other", str)
        raise RuntimeError("step failed")

    monkeypatch.setattr(database, "MIGRATIONS", [*schema.MIGRATIONS, ("note", add_note), ("broken", broken)])
    with pytest.raises(RuntimeError, match="step failed"):
        Store(tmp_path / "state.db")
    monkeypatch.setattr(database, "MIGRATIONS", list(schema.MIGRATIONS))
    store = Store(tmp_path / "state.db")
    try:
        columns = {r["name"] for r in store.query("PRAGMA table_info(flows)")}
        assert "note" in columns and "other" not in columns  # the failed step left nothing behind
        assert store.schema_version == released + 1
    finally:
        store.close()


def test_a_sqlite_utils_write_joins_the_unit_of_work_and_rolls_back_with_it(tmp_path: Path) -> None:
    """sqlite-utils' upsert inside `atomic()` must not commit the open transaction (crash safety of a unit)."""
    from gitsync.state import outbox

    store = Store(tmp_path / "state.db")
    try:
        with pytest.raises(RuntimeError), store.atomic() as conn:
            outbox.enqueue_status(conn, "s", "c" * 40, "gitsync/sync", "success", "ok", None)
            outbox.record_sent(store, 1, ("s", "c" * 40, "gitsync/sync"), "success", "ok", now_iso())
            raise RuntimeError("the unit of work fails after the write")
        assert store.query("SELECT * FROM outbox") == []
        assert store.query("SELECT * FROM outbox_sent") == []
        with store.atomic() as conn:
            outbox.enqueue_status(conn, "s", "c" * 40, "gitsync/sync", "success", "ok", None)
        outbox.record_sent(store, 1, ("s", "c" * 40, "gitsync/sync"), "success", "ok", now_iso())
        outbox.record_sent(store, 1, ("s", "c" * 40, "gitsync/sync"), "failure", "no", now_iso())
        assert outbox.last_sent(store, ("s", "c" * 40, "gitsync/sync")) == ("failure", "no")
    finally:
        store.close()


TRIGGER_KIND_MIGRATION = "executions record how they were started (trigger_kind), scheduled ones their source"


def test_executions_of_the_previous_release_get_the_kind_their_row_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [name for name, _ in schema.MIGRATIONS]
    before = names.index(TRIGGER_KIND_MIGRATION)
    monkeypatch.setattr(database, "MIGRATIONS", schema.MIGRATIONS[:before])  # the release before the column
    store = Store(tmp_path / "state.db")
    with store.atomic() as conn:
        conn.execute(
            """INSERT INTO revisions (uid, revision, source, commit_sha, path, blob, applied_at)
               VALUES ('ns.f', 1, 'main', ?, 'f.yaml', 'b', ?)""",
            ("c" * 40, now_iso()),
        )
        rows = {
            "manual-or-api": {},
            "webhook": {"trigger_vars": '{"body": {}, "headers": {}, "parameters": {}}'},
            "schedule": {"trigger_uid": "ns.f/t", "scheduled_at": "2026-01-01T00:00:00.000+00:00"},
            "flow": {"trigger_uid": "ns.g/on_f", "trigger_vars": '{"executionId": "x"}'},
            "subflow": {"parent_execution": "manual-or-api", "trigger_vars": '{"executionId": "x"}'},
            "retry": {"original_id": "manual-or-api", "attempt": 2},
        }
        for execution_id, columns in rows.items():
            values = {"id": execution_id, "flow_uid": "ns.f", "revision": 1, "commit_sha": "c" * 40, **columns}
            values |= {"state": "SUCCESS", "created_at": now_iso()}
            conn.execute(
                f"INSERT INTO executions ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                tuple(values.values()),
            )
    store.close()
    monkeypatch.setattr(database, "MIGRATIONS", list(schema.MIGRATIONS))
    reopened = Store(tmp_path / "state.db")
    try:
        got = {r["id"]: (r["trigger_kind"], r["source"]) for r in reopened.query("SELECT * FROM executions")}
    finally:
        reopened.close()
    assert got == {
        "manual-or-api": (None, None),  # `gitsync run` and the API left nothing to tell them apart
        "webhook": ("webhook", None),
        "schedule": ("schedule", "main"),  # a scheduled run gets the source its status goes to
        "flow": ("flow", None),
        "subflow": ("subflow", None),
        "retry": ("retry", None),
    }
