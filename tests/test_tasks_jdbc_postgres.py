"""PostgreSQL tasks (Query, Queries, CopyIn, CopyOut, Trigger) against a real PostgreSQL server
(tests/postgres_server.py, once per session)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from amazon.ion import simpleion
from postgres_server import PASSWORD, USER, PostgresServer
from taskctx import make_context

from plugins.jdbc import postgres_copy, postgresql
from plugins.jdbc.postgresql import iso_interval
from runner.api import RunContext, TaskFailed, TaskKilled
from runner.registry import Registry
from runner.validate.validator import validate_flow


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    return make_context(tmp_path)


@pytest.fixture
def table(postgres: PostgresServer) -> Iterator[str]:
    """A fresh table name; the table is dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def task(cls: type, server: PostgresServer, **props: Any) -> Any:
    data = {"id": "task", "type": cls.type_name, "url": server.url, "username": USER, "password": PASSWORD}
    return cls.model_validate({**data, **props})


def seed(server: PostgresServer, sql: str) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(sql)


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"fetchType": "FETCH_ONE"}, {"row": {"id": 1, "name": "a;b"}, "size": 1}),
        ({"fetchType": "FETCH"}, {"rows": [{"id": 1, "name": "a;b"}, {"id": 2, "name": "c"}], "size": 2}),
        ({"fetchType": "NONE"}, {}),
        ({"fetch": True, "fetchSize": 1}, {"rows": [{"id": 1, "name": "a;b"}, {"id": 2, "name": "c"}], "size": 2}),
    ],
)
def test_fetch_types(postgres: PostgresServer, ctx: RunContext, table: str, props: dict, expected: dict) -> None:
    seed(postgres, f"create table {table}(id int, name text); insert into {table} values (1, 'a;b'), (2, 'c')")
    query = task(postgresql.Query, postgres, sql=f"select * from {table} order by id", **props)
    assert query.run(ctx) == expected


def test_types_map_as_kestra_documents(postgres: PostgresServer, ctx: RunContext) -> None:
    """Kestra's PostgresCellConverter: ISO intervals, parsed json, lists, uuid text, timestamptz in timeZoneId."""
    sql = """select 12.50::numeric(6,2) as price, true as ok, 7::bigint as big, 1.5::float8 as f,
        date '2024-02-29' as d, time '13:14:15' as t, timestamp '2024-01-02 03:04:05.5' as ts,
        timestamptz '2024-01-02 03:04:05+00' as tstz, timetz '10:00:00+02' as ttz,
        interval '1 year 2 months 3 days 04:05:06' as iv, interval '-1 day +02:03:00' as neg,
        '{"a": [1, {"b": null}]}'::jsonb as jb, '[1,2]'::json as js, array[1,2,3] as arr,
        array['x','y'] as texts, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid as id, '\\x0102ff'::bytea as raw,
        'cat:1 dog:2'::tsvector as tv, null::text as nothing"""
    query = task(postgresql.Query, postgres, sql=sql, fetchType="FETCH_ONE", timeZoneId="Europe/Paris")
    row = query.run(ctx)["row"]
    assert row == {
        "price": 12.5, "ok": True, "big": 7, "f": 1.5, "d": "2024-02-29", "t": "13:14:15",
        "ts": "2024-01-02T03:04:05.500000", "tstz": "2024-01-02T04:04:05+01:00", "ttz": "09:00:00",
        "iv": "P1Y2M3DT4H5M6S", "neg": "P0Y0M-1DT2H3M0S", "jb": {"a": [1, {"b": None}]}, "js": [1, 2],
        "arr": [1, 2, 3], "texts": ["x", "y"], "id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "raw": "AQL/",
        "tv": "'cat':1 'dog':2", "nothing": None,
    }  # fmt: skip


def test_interval_text_in_kestra_form() -> None:
    assert iso_interval("00:00:00") == "P0Y0M0DT0H0M0S"
    assert iso_interval("-02:03:04.5") == "P0Y0M0DT-2H-3M-4S"
    assert iso_interval("5 years") == "P5Y0M0DT0H0M0S"


def test_store_writes_ion_with_the_servers_types(postgres: PostgresServer, ctx: RunContext, table: str) -> None:
    seed(
        postgres,
        f"create table {table}(id int, price numeric(6,2), at timestamptz, raw bytea, doc jsonb);"
        f"insert into {table} values (1, 12.50, '2024-01-02 03:04:05+00', '\\x01', '{{\"k\": 1}}'),"
        f" (2, null, null, null, null)",
    )
    query = task(postgresql.Query, postgres, sql=f"select * from {table} order by id", fetchType="STORE", fetchSize=1)
    outputs = query.run(ctx)
    assert outputs["size"] == 2
    with ctx.storage.path(outputs["uri"]).open("rb") as handle:
        rows = [dict(row) for row in simpleion.load(handle, single_value=False)]
    assert rows[0]["price"] == Decimal("12.50")
    assert rows[0]["raw"] == b"\x01"
    assert rows[0]["at"].isoformat() == "2024-01-02T03:04:05+00:00"
    assert dict(rows[0]["doc"]) == {"k": 1}
    assert ctx.storage.path(outputs["uri"]).read_text().splitlines()[1] == "{id:2,price:null,at:null,raw:null,doc:null}"


def test_queries_outputs_each_result_and_parameters_bind(postgres: PostgresServer, ctx: RunContext, table: str) -> None:
    sql = f"""create table {table}(id int, name text, note text);
        insert into {table} values (:id, :name, 'it''s 50% :name');
        select id, name, note, 'x'::text as cast_kept from {table};
        select count(*) as n from {table} where name = :name"""
    queries = task(postgresql.Queries, postgres, sql=sql, fetchType="FETCH", parameters={"id": 7, "name": "ann"})
    outputs = queries.run(ctx)["outputs"]
    assert outputs == [
        {"rows": [{"id": 7, "name": "ann", "note": "it's 50% :name", "cast_kept": "x"}], "size": 1},
        {"rows": [{"n": 1}], "size": 1},
    ]


def test_queries_roll_back_on_a_failing_statement(postgres: PostgresServer, ctx: RunContext, table: str) -> None:
    seed(postgres, f"create table {table}(id int primary key)")
    sql = f"insert into {table} values (1); insert into {table} values (1)"
    with pytest.raises(TaskFailed) as failed:
        task(postgresql.Queries, postgres, sql=sql).run(ctx)
    assert "statement 2 of 2 failed" in str(failed.value)
    assert "duplicate key value violates unique constraint" in str(failed.value)
    count = task(postgresql.Query, postgres, sql=f"select count(*) as n from {table}", fetchType="FETCH_ONE")
    assert count.run(ctx)["row"] == {"n": 0}


def test_after_sql_runs_in_the_querys_transaction(postgres: PostgresServer, ctx: RunContext, table: str) -> None:
    seed(postgres, f"create table {table}(id int, done bool default false); insert into {table}(id) values (1), (2)")
    query = task(
        postgresql.Query,
        postgres,
        sql=f"select id from {table} where not done order by id",
        afterSQL=f"update {table} set done = true where not done",
        fetchType="FETCH",
    )
    assert query.run(ctx)["size"] == 2
    assert query.run(ctx) == {"rows": [], "size": 0}
    broken = task(
        postgresql.Query, postgres, sql=f"insert into {table}(id) values (3)", afterSQL="update nowhere set x=1"
    )
    with pytest.raises(
        TaskFailed, match=r'afterSQL failed, so the query.s changes were rolled back: relation "nowhere"'
    ):
        broken.run(ctx)
    left = task(postgresql.Query, postgres, sql=f"select count(*) as n from {table}", fetchType="FETCH_ONE")
    assert left.run(ctx)["row"] == {"n": 2}


def test_bad_sql_fails_with_the_servers_message(postgres: PostgresServer, ctx: RunContext) -> None:
    with pytest.raises(TaskFailed) as failed:
        task(postgresql.Query, postgres, sql="selec 1").run(ctx)
    assert 'syntax error at or near "selec"' in str(failed.value)
    assert "selec 1" in str(failed.value)


def test_wrong_password_is_refused_without_showing_it(postgres: PostgresServer, ctx: RunContext) -> None:
    query = task(postgresql.Query, postgres, sql="select 1", password="not-the-Password-123")
    with pytest.raises(TaskFailed) as failed:
        query.run(ctx)
    message = str(failed.value)
    assert f"could not connect to PostgreSQL at 127.0.0.1:{postgres.port} as 'gitsync'" in message
    assert 'password authentication failed for user "gitsync"' in message
    assert "not-the-Password-123" not in message


def test_credentials_and_options_in_the_url(postgres: PostgresServer, ctx: RunContext) -> None:
    url = f"{postgres.url}?user={USER}&password={PASSWORD}&currentSchema=information_schema&ApplicationName=etl"
    query = postgresql.Query.model_validate(
        {"id": "q", "type": postgresql.Query.type_name, "url": url, "fetchType": "FETCH_ONE",
         "sql": "select current_schema() as s, current_setting('application_name') as app"}
    )  # fmt: skip
    assert query.run(ctx)["row"] == {"s": "information_schema", "app": "etl"}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("jdbc:mysql://127.0.0.1/db", "url must start with jdbc:postgresql://"),
        ("jdbc:postgresql:db", "url must name the server after jdbc:postgresql://"),
        ("", "url is empty"),
    ],
)
def test_a_bad_url_says_what_is_expected(ctx: RunContext, url: str, reason: str) -> None:
    query = postgresql.Query.model_validate({"id": "q", "type": postgresql.Query.type_name, "url": url, "sql": "x"})
    with pytest.raises(TaskFailed, match=reason):
        query.run(ctx)


def test_ssl_required_by_a_server_without_it_is_refused(postgres: PostgresServer, ctx: RunContext) -> None:
    query = task(postgresql.Query, postgres, sql="select 1", sslMode="REQUIRE")
    with pytest.raises(TaskFailed, match="server does not support SSL"):
        query.run(ctx)
    plain = task(postgresql.Query, postgres, sql="select 1 as one", sslMode="DISABLE", fetchType="FETCH_ONE")
    assert plain.run(ctx)["row"] == {"one": 1}


def test_a_killed_query_is_cancelled_on_the_server(postgres: PostgresServer, ctx: RunContext) -> None:
    query = task(postgresql.Query, postgres, sql="select pg_sleep(30)")
    threading.Timer(0.5, ctx.cancelled.set).start()
    with pytest.raises(TaskKilled, match="the query was killed"):
        query.run(ctx)


def test_copy_out_and_in_round_trip(postgres: PostgresServer, ctx: RunContext, table: str) -> None:
    seed(
        postgres,
        f"create table {table}(id int, name text, city text); "
        f"insert into {table} values (1, 'Ann', 'Paris'), (2, 'Bo, Jr.', null), (3, 'Cy \"Q\"', 'Oslo')",
    )
    out = task(postgres_copy.CopyOut, postgres, table=table, format="CSV", header=True, columns=["id", "name"])
    copied = out.run(ctx)
    assert copied["rowCount"] == 3
    text = ctx.storage.path(copied["uri"]).read_text()
    assert text.splitlines() == ["id,name", "1,Ann", '2,"Bo, Jr."', '3,"Cy ""Q"""']

    seed(postgres, f"create table {table}_copy(id int, name text)")
    try:
        into = task(
            postgres_copy.CopyIn, postgres, table=f"{table}_copy", format="CSV", header=True, **{"from": copied["uri"]}
        )
        assert into.run(ctx) == {"rowCount": 3}
        check = task(postgresql.Query, postgres, sql=f"select * from {table}_copy order by id", fetchType="FETCH")
        assert check.run(ctx)["rows"] == [
            {"id": 1, "name": "Ann"}, {"id": 2, "name": "Bo, Jr."}, {"id": 3, "name": 'Cy "Q"'},
        ]  # fmt: skip
    finally:
        seed(postgres, f"drop table {table}_copy")


def test_copy_out_of_a_query_with_delimiter_and_null(postgres: PostgresServer, ctx: RunContext) -> None:
    out = task(
        postgres_copy.CopyOut,
        postgres,
        sql="select 1 as a, null::text as b union all select 2, 'x'",
        delimiter="|",
        nullString="NULL",
    )
    copied = out.run(ctx)
    assert ctx.storage.path(copied["uri"]).read_text() == "1|NULL\n2|x\n"
    assert copied["rowCount"] == 2


def test_copy_in_of_a_bad_file_fails_with_the_servers_message(
    postgres: PostgresServer, ctx: RunContext, table: str
) -> None:
    seed(postgres, f"create table {table}(id int)")
    uri = ctx.storage.put(b"id\nnot-a-number\n", "bad.csv")
    into = task(postgres_copy.CopyIn, postgres, table=table, format="CSV", header=True, **{"from": uri})
    with pytest.raises(TaskFailed, match='the COPY failed: invalid input syntax for type integer: "not-a-number"'):
        into.run(ctx)


def test_copy_delimiter_must_be_one_character(postgres: PostgresServer, ctx: RunContext) -> None:
    out = task(postgres_copy.CopyOut, postgres, table="x", delimiter=";;")
    with pytest.raises(TaskFailed, match="delimiter must be a single one-byte character"):
        out.run(ctx)


def test_trigger_fires_once_per_new_rows(postgres: PostgresServer, ctx: RunContext, table: str) -> None:
    """Kestra's pattern: the query reads the new rows, afterSQL marks them, so each row fires one execution."""
    seed(postgres, f"create table {table}(id int, status text default 'NEW')")
    trigger = task(
        postgresql.Trigger,
        postgres,
        interval="PT5M",
        sql=f"select id from {table} where status = 'NEW' order by id",
        afterSQL=f"update {table} set status = 'DONE' where status = 'NEW'",
    )
    assert trigger.interval.total_seconds() == 300
    assert trigger.evaluate(ctx) is None
    seed(postgres, f"insert into {table}(id) values (1), (2)")
    assert trigger.evaluate(ctx) == {"rows": [{"id": 1}, {"id": 2}], "size": 2}
    assert trigger.evaluate(ctx) is None
    seed(postgres, f"insert into {table}(id) values (3)")
    assert trigger.evaluate(ctx) == {"rows": [{"id": 3}], "size": 1}
    assert trigger.evaluate(ctx) is None


def test_trigger_store_and_fetch_one(postgres: PostgresServer, ctx: RunContext) -> None:
    one = task(postgresql.Trigger, postgres, sql="select 1 as a union all select 2", fetchType="FETCH_ONE")
    assert one.evaluate(ctx) == {"row": {"a": 1}, "size": 1}
    stored = task(postgresql.Trigger, postgres, sql="select 1 as a", fetchType="STORE").evaluate(ctx)
    assert stored is not None
    assert ctx.storage.path(stored["uri"]).read_text().strip() == "{a:1}"


def test_flows_validate_with_kestras_properties(registry: Registry) -> None:
    flow = {
        "id": "pg", "namespace": "company.team",
        "tasks": [
            {"id": "q", "type": "io.kestra.plugin.jdbc.postgresql.Query", "url": "jdbc:postgresql://db:5432/x",
             "username": "u", "password": "{{ secret('PG') }}", "sql": "select 1", "fetchType": "STORE",
             "ssl": True, "sslMode": "REQUIRE", "connectionPooling": True},
            {"id": "c", "type": "io.kestra.plugin.jdbc.postgresql.CopyIn", "url": "jdbc:postgresql://db/x",
             "from": "{{ outputs.q.uri }}", "table": "t", "format": "CSV", "header": True, "delimiter": ","},
        ],
        "triggers": [
            {"id": "w", "type": "io.kestra.plugin.jdbc.postgresql.Trigger", "interval": "PT30S",
             "url": "jdbc:postgresql://db/x", "sql": "select 1", "afterSQL": "update t set x = 1"},
        ],
    }  # fmt: skip
    report = validate_flow(flow, registry)
    assert not report.errors, report.errors
    assert any("connectionPooling" in str(w) for w in report.warnings)
    flow["triggers"][0]["fetchType"] = "NONE"  # type: ignore[index]
    errors = validate_flow(flow, registry).errors
    assert any("the trigger would never fire" in str(e) for e in errors)
