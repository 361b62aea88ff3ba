"""MySQL tasks (Query, Queries, Trigger) against a real MariaDB server (tests/mariadb_server.py, once per session),
over TCP with a user's password, as a flow connects."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from amazon.ion import simpleion
from mariadb_server import PASSWORD, USER, MariaDbServer
from taskctx import make_context

from plugins.jdbc import mysql
from runner.api import RunContext, TaskFailed, TaskKilled
from runner.registry import Registry
from runner.validate.validator import validate_flow


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    return make_context(tmp_path)


@pytest.fixture
def table(mariadb: MariaDbServer) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    mariadb.sql(f"DROP TABLE IF EXISTS gitsync.{name}")


def task(cls: type, server: MariaDbServer, **props: Any) -> Any:
    data = {"id": "task", "type": cls.type_name, "url": server.url, "username": USER, "password": PASSWORD}
    return cls.model_validate({**data, **props})


def seed(server: MariaDbServer, sql: str) -> None:
    server.sql(f"USE gitsync; {sql}")


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"fetchType": "FETCH_ONE"}, {"row": {"id": 1, "name": "a;b"}, "size": 1}),
        ({"fetchType": "FETCH"}, {"rows": [{"id": 1, "name": "a;b"}, {"id": 2, "name": "c"}], "size": 2}),
        ({"fetchType": "NONE"}, {}),
        ({"fetchOne": True}, {"row": {"id": 1, "name": "a;b"}, "size": 1}),
    ],
)
def test_fetch_types(mariadb: MariaDbServer, ctx: RunContext, table: str, props: dict, expected: dict) -> None:
    seed(mariadb, f"create table {table}(id int, name text); insert into {table} values (1, 'a;b'), (2, 'c')")
    query = task(mysql.Query, mariadb, sql=f"select * from {table} order by id", **props)
    assert query.run(ctx) == expected


def test_types_map_as_kestra_documents(mariadb: MariaDbServer, ctx: RunContext, table: str) -> None:
    """Kestra's MysqlCellConverter and the JDBC driver: DATETIME local, TIMESTAMP an instant in UTC, TIME a time of
    day, TINYINT(1) and BIT(1) booleans, YEAR a date, JSON its text."""
    seed(
        mariadb,
        f"create table {table}(price decimal(6,2), ok boolean, small tinyint, flag bit(1), dt datetime(3),"
        f" ts timestamp null, tm time, long_tm time, y year, d date, doc json, raw blob, e enum('x','y'));"
        f"insert into {table} values (12.50, true, 5, b'1', '2024-01-02 03:04:05.250', '2024-01-02 03:04:05',"
        f" '13:14:15', '100:00:00', 2024, '2024-02-29', '{{\"a\": [1, 2]}}', x'0102ff', 'y')",
    )
    row = task(mysql.Query, mariadb, sql=f"select * from {table}", fetchType="FETCH_ONE").run(ctx)["row"]
    assert row == {
        "price": 12.5, "ok": True, "small": 5, "flag": True, "dt": "2024-01-02T03:04:05.250000",
        "ts": "2024-01-02T03:04:05+00:00", "tm": "13:14:15", "long_tm": "100:00:00", "y": "2024-01-01",
        "d": "2024-02-29", "doc": '{"a": [1, 2]}', "raw": "AQL/", "e": "y",
    }  # fmt: skip


def test_store_writes_ion(mariadb: MariaDbServer, ctx: RunContext, table: str) -> None:
    seed(mariadb, f"create table {table}(id int, price decimal(6,2)); insert into {table} values (1, 12.50), (2, null)")
    query = task(mysql.Query, mariadb, sql=f"select * from {table} order by id", fetchType="STORE")
    outputs = query.run(ctx)
    assert outputs["size"] == 2
    with ctx.storage.path(outputs["uri"]).open("rb") as handle:
        rows = [dict(row) for row in simpleion.load(handle, single_value=False)]
    assert rows[0] == {"id": 1, "price": Decimal("12.50")}
    assert ctx.storage.path(outputs["uri"]).read_text().splitlines()[1] == "{id:2,price:null}"


def test_queries_parameters_and_escapes(mariadb: MariaDbServer, ctx: RunContext, table: str) -> None:
    sql = f"""create table {table}(id int, name text, note text);
        insert into {table} values (:id, :name, 'it\\'s 50% :name; really');
        select id, name, note from {table};
        select count(*) as n from {table} where name = :name"""
    queries = task(mysql.Queries, mariadb, sql=sql, fetchType="FETCH", parameters={"id": 7, "name": "ann"})
    assert queries.run(ctx)["outputs"] == [
        {"rows": [{"id": 7, "name": "ann", "note": "it's 50% :name; really"}], "size": 1},
        {"rows": [{"n": 1}], "size": 1},
    ]


def test_queries_roll_back_on_a_failing_statement(mariadb: MariaDbServer, ctx: RunContext, table: str) -> None:
    seed(mariadb, f"create table {table}(id int primary key) engine=InnoDB")
    with pytest.raises(TaskFailed) as failed:
        task(mysql.Queries, mariadb, sql=f"insert into {table} values (1); insert into {table} values (1)").run(ctx)
    assert "statement 2 of 2 failed" in str(failed.value)
    assert "Duplicate entry '1' for key 'PRIMARY'" in str(failed.value)
    count = task(mysql.Query, mariadb, sql=f"select count(*) as n from {table}", fetchType="FETCH_ONE")
    assert count.run(ctx)["row"] == {"n": 0}


def test_bad_sql_fails_with_the_servers_message(mariadb: MariaDbServer, ctx: RunContext) -> None:
    with pytest.raises(TaskFailed, match="You have an error in your SQL syntax"):
        task(mysql.Query, mariadb, sql="selec 1").run(ctx)


def test_wrong_password_is_refused_without_showing_it(mariadb: MariaDbServer, ctx: RunContext) -> None:
    query = task(mysql.Query, mariadb, sql="select 1", password="not-the-Password-123")
    with pytest.raises(TaskFailed) as failed:
        query.run(ctx)
    message = str(failed.value)
    assert f"could not connect to MySQL at 127.0.0.1:{mariadb.port} as 'gitsync'" in message
    assert "Access denied for user 'gitsync'" in message
    assert "not-the-Password-123" not in message


def test_tls_required_by_the_url_against_a_server_without_it(mariadb: MariaDbServer, ctx: RunContext) -> None:
    query = mysql.Query.model_validate(
        {"id": "q", "type": mysql.Query.type_name, "url": f"{mariadb.url}?sslMode=REQUIRED", "username": USER,
         "password": PASSWORD, "sql": "select 1"}
    )  # fmt: skip
    with pytest.raises(TaskFailed, match="could not connect to MySQL"):
        query.run(ctx)


def test_load_data_local_infile_reads_the_input_file(mariadb: MariaDbServer, ctx: RunContext, table: str) -> None:
    seed(mariadb, f"create table {table}(id int, name text)")
    uri = ctx.storage.put(b"id,name\n1,Ann\n2,Bo\n", "people.csv")
    path = task(mysql.Query, mariadb, sql="-", inputFile=uri).render_variables(str(ctx.workdir))["inputFile"]
    load = task(
        mysql.Query,
        mariadb,
        inputFile=uri,
        sql=f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {table} FIELDS TERMINATED BY ',' IGNORE 1 LINES",
    )
    load.run(ctx)
    rows = task(mysql.Query, mariadb, sql=f"select * from {table} order by id", fetchType="FETCH").run(ctx)["rows"]
    assert rows == [{"id": 1, "name": "Ann"}, {"id": 2, "name": "Bo"}]
    elsewhere = task(mysql.Query, mariadb, sql=f"LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE {table}")
    with pytest.raises(TaskFailed, match="may only read the task's inputFile"):
        elsewhere.run(ctx)


def test_a_killed_query_is_stopped_on_the_server(mariadb: MariaDbServer, ctx: RunContext) -> None:
    threading.Timer(0.5, ctx.cancelled.set).start()
    with pytest.raises(TaskKilled, match="the query was killed"):
        task(mysql.Query, mariadb, sql="select sleep(30)", fetchType="FETCH").run(ctx)


def test_trigger_fires_once_per_new_rows(mariadb: MariaDbServer, ctx: RunContext, table: str) -> None:
    seed(mariadb, f"create table {table}(id int, status varchar(8) default 'NEW') engine=InnoDB")
    trigger = task(
        mysql.Trigger,
        mariadb,
        sql=f"select id from {table} where status = 'NEW' order by id",
        afterSQL=f"update {table} set status = 'DONE' where status = 'NEW'",
    )
    assert trigger.interval.total_seconds() == 60
    assert trigger.evaluate(ctx) is None
    seed(mariadb, f"insert into {table}(id) values (1), (2)")
    assert trigger.evaluate(ctx) == {"rows": [{"id": 1}, {"id": 2}], "size": 2}
    assert trigger.evaluate(ctx) is None
    seed(mariadb, f"insert into {table}(id) values (3)")
    assert trigger.evaluate(ctx) == {"rows": [{"id": 3}], "size": 1}


def test_flows_validate(registry: Registry) -> None:
    flow = {
        "id": "my", "namespace": "company.team",
        "tasks": [{"id": "q", "type": "io.kestra.plugin.jdbc.mysql.Query", "url": "jdbc:mysql://db:3306/x",
                   "username": "u", "password": "p", "sql": "select 1", "fetchType": "FETCH"}],
        "triggers": [{"id": "w", "type": "io.kestra.plugin.jdbc.mysql.Trigger", "url": "jdbc:mysql://db/x",
                      "sql": "select 1", "interval": "PT1M"}],
    }  # fmt: skip
    assert not validate_flow(flow, registry).errors
