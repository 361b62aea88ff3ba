"""SQLite and DuckDB query tasks on real database files."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest
from amazon.ion import simpleion
from taskctx import make_context

from plugins.jdbc import duckdb as duck
from plugins.jdbc import sqlite
from plugins.jdbc.sqlite import split_statements
from runner.api import RunContext, TaskFailed, TaskKilled

SEED = "create table t(id integer, name text); insert into t values (1, 'a;b'), (2, 'c'), (3, 'd');"


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    return make_context(tmp_path)


def sqlite_task(cls: type, sql: str, **props: Any) -> Any:
    return cls.model_validate(
        {"id": "task", "type": cls.type_name, "url": "jdbc:sqlite:db.sqlite", "sql": sql, **props}
    )


def duck_task(cls: type, sql: str, **props: Any) -> Any:
    return cls.model_validate(
        {"id": "task", "type": cls.type_name, "url": "jdbc:duckdb:db.duckdb", "sql": sql, **props}
    )


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"fetchType": "FETCH_ONE"}, {"row": {"id": 1, "name": "a;b"}, "size": 1}),
        (
            {"fetchType": "FETCH"},
            {"rows": [{"id": 1, "name": "a;b"}, {"id": 2, "name": "c"}, {"id": 3, "name": "d"}], "size": 3},
        ),
        ({"fetchType": "NONE"}, {}),
        ({"fetchOne": True}, {"row": {"id": 1, "name": "a;b"}, "size": 1}),
        (
            {"fetch": True, "fetchSize": 1},
            {"rows": [{"id": 1, "name": "a;b"}, {"id": 2, "name": "c"}, {"id": 3, "name": "d"}], "size": 3},
        ),
    ],
)
@pytest.mark.parametrize("make", [sqlite_task, duck_task])
def test_fetch_types(ctx: RunContext, make: Any, props: dict[str, Any], expected: dict[str, Any]) -> None:
    module = sqlite if make is sqlite_task else duck
    make(module.Queries, SEED).run(ctx)
    assert make(module.Query, "select * from t order by id", **props).run(ctx) == expected


@pytest.mark.parametrize("make", [sqlite_task, duck_task])
def test_store_writes_ion_as_kestra_does(ctx: RunContext, make: Any) -> None:
    """Kestra's STORE file is Ion text, one map per line (its FileSerde); read back with the Ion library."""
    module = sqlite if make is sqlite_task else duck
    make(module.Queries, SEED).run(ctx)
    outputs = make(module.Query, "select * from t order by id", fetchType="STORE", fetchSize=2).run(ctx)
    assert outputs["size"] == 3
    assert outputs["uri"].endswith("/result.ion")
    stored = ctx.storage.path(outputs["uri"])
    lines = stored.read_text().splitlines()
    assert lines[1] == '{id:2,name:"c"}'
    with stored.open("rb") as handle:
        rows = list(simpleion.load(handle, single_value=False))
    assert [dict(row) for row in rows] == [{"id": 1, "name": "a;b"}, {"id": 2, "name": "c"}, {"id": 3, "name": "d"}]


def test_store_keeps_duckdb_types_in_ion(ctx: RunContext) -> None:
    """Dates, timestamps, decimals and bytes keep their Ion types (Kestra's IonModule), nulls are Ion nulls."""
    sql = (
        "select date '2024-01-31' as d, timestamp '2024-01-31 10:20:30' as ts, 12.50::decimal(5,2) as amount, "
        "'\\x01\\x02'::blob as raw, null as nothing, 1.5::double as ratio"
    )
    outputs = duck_task(duck.Query, sql, fetchType="STORE").run(ctx)
    text = ctx.storage.path(outputs["uri"]).read_text()
    assert text == (
        '{d:2024-01-31,ts:LocalDateTime::"2024-01-31T10:20:30",amount:12.50,raw:{{AQI=}},nothing:null,ratio:1.5e+0}\n'
    )


@pytest.mark.parametrize("make", [sqlite_task, duck_task])
def test_named_parameters(ctx: RunContext, make: Any) -> None:
    module = sqlite if make is sqlite_task else duck
    make(module.Queries, SEED).run(ctx)
    task = make(module.Query, "select name from t where id = :id and name <> :skip", parameters={"id": 2, "skip": "x"})
    assert task.model_copy(update={"fetchType": "FETCH_ONE"}).run(ctx)["row"] == {"name": "c"}


@pytest.mark.parametrize("make", [sqlite_task, duck_task])
def test_queries_outputs_and_transaction_rollback(ctx: RunContext, make: Any) -> None:
    module = sqlite if make is sqlite_task else duck
    outputs = make(
        module.Queries, SEED + " select count(*) as n from t; select max(id) as m from t", fetchType="FETCH_ONE"
    ).run(ctx)
    assert outputs == {"outputs": [{"row": {"n": 3}, "size": 1}, {"row": {"m": 3}, "size": 1}]}
    with pytest.raises(TaskFailed) as failed:
        make(module.Queries, "insert into t values (4, 'e'); select * from missing_table; ").run(ctx)
    assert "statement 2 of 2 failed" in failed.value.message and "missing_table" in failed.value.message
    count = make(module.Query, "select count(*) as n from t", fetchType="FETCH_ONE").run(ctx)
    assert count["row"] == {"n": 3}  # the insert was rolled back


def test_sqlite_error_names_the_statement(ctx: RunContext) -> None:
    with pytest.raises(TaskFailed) as failed:
        sqlite_task(sqlite.Query, "selec 1").run(ctx)
    assert "the statement failed" in failed.value.message and "syntax error" in failed.value.message


def test_sqlite_file_in_and_out(ctx: RunContext, tmp_path: Path) -> None:
    source = tmp_path / "given.sqlite"
    with sqlite3.connect(source) as conn:
        conn.executescript(SEED)
    uri = ctx.storage.put(source, "given.sqlite")
    task = sqlite_task(
        sqlite.Queries,
        "insert into t values (9, 'z'); select count(*) n from t",
        sqliteFile=uri,
        outputDbFile=True,
        fetchType="FETCH_ONE",
    )
    outputs = task.run(ctx)
    assert outputs["outputs"][0]["row"] == {"n": 4}
    with sqlite3.connect(ctx.storage.path(outputs["databaseUri"])) as conn:
        assert conn.execute("select name from t where id = 9").fetchone() == ("z",)


@pytest.mark.parametrize("url", ["jdbc:sqlite:", "jdbc:sqlite::memory:"])
def test_sqlite_memory(ctx: RunContext, url: str) -> None:
    task = sqlite.Queries.model_validate(
        {
            "id": "task",
            "type": sqlite.Queries.type_name,
            "url": url,
            "sql": SEED + "select count(*) n from t",
            "fetchType": "FETCH_ONE",
        }
    )
    assert task.run(ctx)["outputs"] == [{"row": {"n": 3}, "size": 1}]
    assert not list(ctx.workdir.iterdir())


def test_sqlite_memory_kept_with_output_db_file(ctx: RunContext) -> None:
    task = sqlite.Queries.model_validate(
        {"id": "task", "type": sqlite.Queries.type_name, "url": "jdbc:sqlite:", "sql": SEED, "outputDbFile": True}
    )
    uri = task.run(ctx)["databaseUri"]
    with sqlite3.connect(ctx.storage.path(uri)) as conn:
        assert conn.execute("select count(*) from t").fetchone() == (3,)


@pytest.mark.parametrize(
    ("sql", "count"),
    [
        ("select 1", 1),
        ("select 1; select 2;", 2),
        ("select ';'; select 'a;b' -- c;d\n;", 2),
        ("create trigger tr after insert on t begin update t set id = 1; update t set id = 2; end; select 1", 2),
        (" ; ;", 0),
    ],
)
def test_sqlite_split(sql: str, count: int) -> None:
    assert len(split_statements(sql)) == count


def test_duckdb_input_files_and_working_dir(ctx: RunContext) -> None:
    task = duck_task(
        duck.Queries,
        f"create table orders as select * from read_csv_auto('{ctx.workdir}/orders.csv');"
        " select count(*) as n, sum(amount) as total from read_csv_auto('orders.csv');"
        f" copy (select * from orders where amount > 1) to '{ctx.workdir}/big.csv' (header);",
        inputFiles={"orders.csv": "id,amount\n1,1.5\n2,0.5\n3,2.0\n"},
        outputFiles=["big.csv"],
        fetchType="FETCH_ONE",
    )
    outputs = task.run(ctx)
    assert outputs["outputs"] == [{"row": {"n": 3, "total": 4.0}, "size": 1}]
    assert ctx.storage.path(outputs["outputFiles"]["big.csv"]).read_text().count("\n") == 3
    with duckdb.connect(str(ctx.workdir / "db.duckdb")) as conn:
        assert conn.execute("select count(*) from orders").fetchone() == (3,)


def test_duckdb_database_uri_and_output_db_file(ctx: RunContext, tmp_path: Path) -> None:
    source = tmp_path / "given.duckdb"
    with duckdb.connect(str(source)) as conn:
        conn.execute("create table t as select 42 as answer")
    uri = ctx.storage.put(source, "given.duckdb")
    task = duck.Query.model_validate(
        {
            "id": "task",
            "type": duck.Query.type_name,
            "databaseUri": uri,
            "sql": "select answer, date '2024-01-02' as d, 1.5::decimal(4,2) as x from t",
            "fetchType": "FETCH_ONE",
            "outputDbFile": True,
        }
    )
    outputs = task.run(ctx)
    assert outputs["row"] == {"answer": 42, "d": "2024-01-02", "x": 1.5}
    with duckdb.connect(str(ctx.storage.path(outputs["databaseUri"]))) as conn:
        assert conn.execute("select answer from t").fetchone() == (42,)


def test_duckdb_casts_are_not_parameters(ctx: RunContext) -> None:
    task = duck.Query.model_validate(
        {
            "id": "task",
            "type": duck.Query.type_name,
            "sql": "select '7'::INTEGER + :n as v",
            "parameters": {"n": 1},
            "fetchType": "FETCH_ONE",
        }
    )
    assert task.run(ctx)["row"] == {"v": 8}


def test_duckdb_kill_interrupts_the_query(ctx: RunContext) -> None:
    task = duck.Query.model_validate(
        {
            "id": "task",
            "type": duck.Query.type_name,
            "sql": "select count(*) from range(100000000000) a",
            "fetchType": "FETCH_ONE",
        }
    )
    threading.Timer(0.3, ctx.cancelled.set).start()
    with pytest.raises(TaskKilled, match="killed"):
        task.run(ctx)


def test_sqlite_timeout_interrupts_the_query(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, timeout_seconds=0.3)
    sql = "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c"
    with pytest.raises(TaskKilled, match="timed out"):
        sqlite_task(sqlite.Query, sql, fetchType="FETCH_ONE").run(ctx)


def test_bad_url(ctx: RunContext) -> None:
    with pytest.raises(TaskFailed, match="url must start with"):
        sqlite_task(sqlite.Query, "select 1", url="jdbc:postgresql://x/y").run(ctx)
