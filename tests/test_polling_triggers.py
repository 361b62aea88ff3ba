"""The JDBC and SFTP triggers polled by the control plane (`gitsync/schedule/polling.Poller`, as the daemon runs it),
against a real PostgreSQL and a real sshd: what a poll claims starts one execution, with `trigger.*` as the flow
reads it, and a poll that finds nothing new starts none. (Their claims themselves, with several pollers at once, are
tested in tests/test_tasks_jdbc_postgres.py and tests/test_tasks_fs_sftp.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from postgres_server import PASSWORD, USER, PostgresServer
from runtime import Runtime
from sshd_server import SshServer

from gitsync.schedule.polling import Poller


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(tmp_path)
    yield rt
    rt.close()


def returned(runtime: Runtime, execution_id: str) -> str:
    assert runtime.runs.wait(execution_id, 60)
    execution = runtime.execution(execution_id)
    assert execution["state"] == "SUCCESS", execution["logs"]
    value: str = execution["task_runs"][0]["outputs"]["value"]
    return value


def test_a_jdbc_trigger_fires_once_per_poll_that_finds_rows(runtime: Runtime, postgres: PostgresServer) -> None:
    table = f"inbox_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id int, seen boolean DEFAULT false)")
        conn.execute(f"INSERT INTO {table} (id) VALUES (1), (2)")
    flow = (
        "id: inbox\nnamespace: acme.db\n"
        "tasks:\n  - id: seen\n    type: io.kestra.plugin.core.debug.Return\n"
        "    format: \"{{ trigger.size }} rows: {{ trigger.rows | jq('.[].id') | join(',') }}\"\n"
        "triggers:\n"
        f"  - id: watch\n    type: io.kestra.plugin.jdbc.postgresql.Trigger\n    interval: PT1S\n"
        f"    url: {postgres.url}\n    username: {USER}\n    password: {PASSWORD}\n"
        f"    sql: SELECT id FROM {table} WHERE NOT seen ORDER BY id\n"
        f"    afterSQL: UPDATE {table} SET seen = true WHERE NOT seen\n"
        "    fetchType: FETCH\n"
    )  # fmt: skip
    poller = Poller(runtime.runs, runtime.runs.factory.registry, runtime.data_dir)
    assert poller.tick(0.0) == []  # no flow yet
    runtime.deploy({"inbox.yaml": flow})  # a trigger added while the poller runs is polled from its next tick
    [first] = poller.tick(0.0)
    assert returned(runtime, first) == "2 rows: 1,2"
    assert poller.tick(1.0) == []  # afterSQL marked them: nothing new
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {table} (id) VALUES (3)")
    assert poller.tick(1.5) == []  # its interval has not passed
    [second] = poller.tick(2.0)
    assert returned(runtime, second) == "1 rows: 3"


def test_an_sftp_trigger_fires_each_file_once_and_moves_it(runtime: Runtime, sshd: SshServer) -> None:
    inbox = sshd.folder(f"inbox-{uuid.uuid4().hex[:8]}")
    flow = (
        "id: landing\nnamespace: acme.sftp\n"
        "tasks:\n  - id: seen\n    type: io.kestra.plugin.core.debug.Return\n"
        "    format: \"{{ trigger.files | length }} {{ trigger.files[0].name }} {{ read(trigger.files[0].path) }}\"\n"
        "triggers:\n"
        f"  - id: watch\n    type: io.kestra.plugin.fs.sftp.Trigger\n    interval: PT1S\n"
        f"    host: {sshd.host}\n    port: \"{sshd.port}\"\n    username: {sshd.user}\n    password: {sshd.password}\n"
        f"    from: {inbox.name}/\n    action: MOVE\n    moveDirectory: {inbox.name}/done/\n"
    )  # fmt: skip
    runtime.deploy({"landing.yaml": flow})
    poller = Poller(runtime.runs, runtime.runs.factory.registry, runtime.data_dir)
    assert poller.tick(0.0) == []  # an empty folder starts nothing
    (inbox / "orders.csv").write_text("id\n1\n")
    sshd.own(inbox / "orders.csv")
    [first] = poller.tick(1.0)
    assert returned(runtime, first) == "1 orders.csv id\n1\n"
    assert not (inbox / "orders.csv").exists() and (inbox / "done" / "orders.csv").exists()
    assert poller.tick(2.0) == []  # moved away: never fired again
