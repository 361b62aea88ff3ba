"""PostgreSQL and MySQL tasks in whole flows run by `gitsync run` (a real process), with the password from
`secret()` and outputs passed between tasks; and a run without the extra names the pip install."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from mariadb_server import PASSWORD as MY_PASSWORD
from mariadb_server import MariaDbServer
from postgres_server import PASSWORD as PG_PASSWORD
from postgres_server import PostgresServer
from runtime import python_hiding, run_outputs
from shared import SHARED, require

PG = "io.kestra.plugin.jdbc.postgresql"
MY = "io.kestra.plugin.jdbc.mysql"


def run_flow(
    tmp_path: Path, text: str, python: str = sys.executable, **secrets: str
) -> subprocess.CompletedProcess[str]:
    source = tmp_path / "flow.yaml"
    source.write_text(text, encoding="utf-8")
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path),
        **{f"SECRET_{name}": base64.b64encode(value.encode()).decode() for name, value in secrets.items()},
    }  # fmt: skip
    return subprocess.run(
        [python, "-m", "gitsync", "run", "--file", str(source)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180,
    )  # fmt: skip


def test_postgres_flow_query_copy_out_copy_in(tmp_path: Path, postgres: PostgresServer) -> None:
    table = f"f_{uuid.uuid4().hex[:8]}"
    secret = "{{ secret('PG_PASSWORD') }}"
    connection = f'url: {postgres.url}\n    username: gitsync\n    password: "{secret}"'
    flow = f"""id: pg_flow
namespace: company.team
outputs:
  - id: rows
    type: JSON
    value: "{{{{ outputs.check.rows }}}}"
  - id: copied
    type: INT
    value: "{{{{ outputs.copy_in.rowCount }}}}"
tasks:
  - id: create
    type: {PG}.Queries
    {connection}
    sql: |
      create table {table}(id int, name text);
      create table {table}_b(id int, name text);
      insert into {table} values (1, 'Ann'), (2, 'Bo');
  - id: export
    type: {PG}.CopyOut
    {connection}
    table: {table}
    format: CSV
    header: true
  - id: copy_in
    type: {PG}.CopyIn
    {connection}
    from: "{{{{ outputs.export.uri }}}}"
    table: {table}_b
    format: CSV
    header: true
  - id: check
    type: {PG}.Query
    {connection}
    sql: select name from {table}_b where id > :min order by id
    parameters:
      min: 0
    fetchType: FETCH
    afterSQL: drop table {table}, {table}_b
"""
    done = run_flow(tmp_path, flow, PG_PASSWORD=PG_PASSWORD)
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_outputs(done) == {"rows": [{"name": "Ann"}, {"name": "Bo"}], "copied": 2}
    assert PG_PASSWORD not in done.stdout + done.stderr


def test_mysql_flow_loads_its_input_file(tmp_path: Path, mariadb: MariaDbServer) -> None:
    table = f"f_{uuid.uuid4().hex[:8]}"
    flow = f"""id: my_flow
namespace: company.team
outputs:
  - id: rows
    type: JSON
    value: "{{{{ outputs.load.outputs[0].rows }}}}"
tasks:
  - id: csv
    type: io.kestra.plugin.core.storage.Write
    content: |
      1,Ann
      2,Bo
    extension: .csv
  - id: load
    type: {MY}.Queries
    url: {mariadb.url}
    username: gitsync
    password: "{{{{ secret('MY_PASSWORD') }}}}"
    inputFile: "{{{{ outputs.csv.uri }}}}"
    fetchType: FETCH
    sql: |
      create table {table}(id int, name text);
      LOAD DATA LOCAL INFILE '{{{{ inputFile }}}}' INTO TABLE {table} FIELDS TERMINATED BY ',';
      select * from {table} order by id;
      drop table {table};
"""
    done = run_flow(tmp_path, flow, MY_PASSWORD=MY_PASSWORD)
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_outputs(done) == {"rows": [{"id": 1, "name": "Ann"}, {"id": 2, "name": "Bo"}]}


@pytest.mark.parametrize(
    ("kind", "module", "extra", "package"),
    [(f"{PG}.Query", "psycopg", "postgres", "psycopg"), (f"{MY}.Query", "pymysql", "mysql", "PyMySQL")],
)
def test_a_run_without_the_extra_names_the_pip_install(
    tmp_path: Path, kind: str, module: str, extra: str, package: str
) -> None:
    flow = f"""id: noextra
namespace: company.team
tasks:
  - id: q
    type: {kind}
    url: jdbc:{"postgresql" if extra == "postgres" else "mysql"}://127.0.0.1:1/db
    sql: select 1
"""
    python = python_hiding(tmp_path, [module])
    done = run_flow(tmp_path, flow, python=str(python))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"needs the Python package {package}, which is not installed" in done.stdout
    assert f"pip install 'gitsync[{extra}]'" in done.stdout


KP = SHARED / "compat" / "kestra" / "kestra-playground"
PLAYGROUND = [
    "batch-groups__ec__flows__generate_ecommerce_mock_data.yaml",
    "batch-groups__ec__flows__build_ecommerce_daily_report.yaml",
    "batch-groups__affiliate__flows__generate_affiliate_mock_data.yaml",
    "batch-groups__affiliate__flows__build_affiliate_daily_report.yaml",
    "batch-groups__affiliate__flows__build_affiliate_partner_rankings.yaml",
]


def test_corpus_playground_flows_run_against_the_server(tmp_path: Path, postgres: PostgresServer) -> None:
    """The corpus's kestra-playground PostgreSQL flows, unchanged, in their order (mock data, then the reports),
    with the connection their pluginDefaults read from `envs` (ENV_* variables)."""
    require(KP)
    env = {
        "ENV_BATCH_DB_URL": postgres.url, "ENV_BATCH_DB_USERNAME": "gitsync", "ENV_BATCH_DB_PASSWORD": PG_PASSWORD,
    }  # fmt: skip
    for name in PLAYGROUND:
        done = subprocess.run(
            [sys.executable, "-m", "gitsync", "run", "--file", str(KP / name)],
            capture_output=True, text=True, env={**os.environ, **env, "HOME": str(tmp_path)}, cwd=tmp_path,
            timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, name + "\n" + done.stdout + done.stderr
        assert done.stdout.rstrip().endswith("SUCCESS"), done.stdout
    with psycopg.connect(postgres.dsn) as conn:
        day = "'2026-06-25'::date"
        orders = conn.execute(f"select count(*) from ecommerce_orders where order_date = {day}").fetchone()
        reported = conn.execute(
            f"select sum(metric_value) from ecommerce_daily_reports where business_date = {day}"
            " and metric_group = 'orders' and metric_name = 'order_count'"
        ).fetchone()
        ranked = conn.execute(f"select count(*) from affiliate_partner_rankings where business_date = {day}").fetchone()
        for table in (
            "ecommerce_order_items",
            "ecommerce_payments",
            "ecommerce_support_tickets",
            "ecommerce_inventory_snapshots",
            "ecommerce_daily_reports",
            "ecommerce_orders",
            "ecommerce_customers",
            "ecommerce_products",
            "affiliate_partner_rankings",
            "affiliate_daily_reports",
            "affiliate_conversions",
            "affiliate_clicks",
            "affiliate_partners",
        ):
            conn.execute(f"drop table if exists {table} cascade")  # fmt: skip
    assert orders is not None and reported is not None and ranked is not None
    assert orders[0] > 0
    assert reported[0] == orders[0]
    assert ranked[0] > 0


def test_corpus_procedure_flow_runs_with_its_connection_pointed_here(tmp_path: Path, postgres: PostgresServer) -> None:
    """kestra_prod's postgres_procedure: several statements in one Query, a PL/pgSQL procedure in dollar quotes that
    commits, then its CALL; only the connection in its taskDefaults is changed to reach this server."""
    source = require(KP.parent / "kestra_prod/flows__demo__postgres_procedure.yml").read_text(encoding="utf-8")
    original = "url: jdbc:postgresql://postgres:5432/kestra\n      username: kestra\n      password: k3str4"
    assert original in source
    here = f"url: {postgres.url}\n      username: gitsync\n      password: {PG_PASSWORD}"
    done = run_flow(tmp_path, source.replace(original, here))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" ok ") == 5, done.stdout
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        balances = conn.execute("select name, balance from accounts order by id").fetchall()
        conn.execute("drop table accounts; drop procedure transfer")
    assert balances == [("Bob", Decimal("9000.00")), ("Alice", Decimal("11000.00"))]
