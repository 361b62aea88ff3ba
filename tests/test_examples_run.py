"""Every bundled example flow runs to the state its author meant, through the real path.

The examples are committed to a git repository in a temporary folder, synced into SQLite and run by a RunManager
(tests/runtime.py). External things they need are provided locally: an HTTP server on 127.0.0.1 serves the orders
CSV and records Slack webhook POSTs; secrets come from SECRET_* environment variables; TMPDIR points into the
temporary folder (the shell tasks of nightly and cleanup_with_errors work under ${TMPDIR:-/tmp}).

Two example files name fixed paths under /tmp for their DuckDB files (`vars.database` of ingest_orders, the
`profiles` of dbt_daily); the repository committed here rewrites them to files of this test's temporary folder,
so that concurrent test runs on one machine never share (and lock) one DuckDB file. Nothing else is changed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import pytest
from gitservers import free_port
from runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "flows"
TERMINAL = ("SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED")
ORDERS_CSV = "order_id,customer,amount\n1,ada,10.5\n2,bob,20.0\n3,eve,7.25\n"
DEPLOY_KEY = "deploy-hook-key-for-tests"

# Shared absolute paths in the examples -> the name of a file in the test's temporary folder that replaces it.
SHARED_PATHS = {"/tmp/gitsync-analytics.duckdb": "analytics.duckdb", "/tmp/gitsync-shop.duckdb": "shop.duckdb"}


@dataclass
class LocalHttp:
    """127.0.0.1 HTTP server: GET /orders.csv serves ORDERS_CSV, every POST is recorded."""

    url: str
    posts: list[tuple[str, bytes]] = field(default_factory=list)
    gets: list[str] = field(default_factory=list)


def _serve(record: LocalHttp) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            record.gets.append(self.path)
            if self.path != "/orders.csv":
                self.send_error(404)
                return
            body = ORDERS_CSV.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            record.posts.append((self.path, self.rfile.read(length)))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Env:
    rt: Runtime
    http: LocalHttp
    tmp: Path
    tmpdir: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("examples_run")
    tmpdir = tmp / "TMPDIR"
    tmpdir.mkdir()
    http = LocalHttp(url="")
    server = _serve(http)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", str(tmpdir))  # before the RunManager exists: its tasks get the environment it saw
        mp.setenv("SECRET_SLACK_WEBHOOK", base64.b64encode(f"{http.url}/slack/hook".encode()).decode())
        mp.setenv("SECRET_DEPLOY_HOOK_KEY", base64.b64encode(DEPLOY_KEY.encode()).decode())
        mp.chdir(ROOT)  # dbt_daily's projectDir examples/dbt/shop is relative to the service's folder
        rt = Runtime(tmp)
        files = {}
        for path in sorted(EXAMPLES.rglob("*.yaml")):
            text = path.read_text(encoding="utf-8")
            for shared, name in SHARED_PATHS.items():
                text = text.replace(shared, str(tmp / name))
            files[path.relative_to(EXAMPLES).as_posix()] = text
        rt.deploy(files)
        try:
            yield Env(rt, http, tmp, tmpdir)
        finally:
            rt.close()
            server.shutdown()
            server.server_close()


def _task(execution: dict[str, Any], task_id: str, value: str | None = None) -> dict[str, Any]:
    runs = [r for r in execution["task_runs"] if r["task_id"] == task_id and (value is None or r["value"] == value)]
    assert runs, f"no task run of {task_id!r} ({value=}) in {[r['task_id'] for r in execution['task_runs']]}"
    return runs[-1]


def _wait_for_new(rt: Runtime, uid: str, known: set[str], timeout: float = 30) -> dict[str, Any]:
    """The first execution of `uid` not in `known`, once it has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for row in rt.store.query("SELECT id, state FROM executions WHERE flow_uid = ? ORDER BY id", (uid,)):
            if row["id"] not in known and row["state"] in TERMINAL:
                return rt.execution(row["id"])
        time.sleep(0.05)
    raise AssertionError(f"no new finished execution of {uid}")


def _ids(rt: Runtime, uid: str) -> set[str]:
    return {r["id"] for r in rt.store.query("SELECT id FROM executions WHERE flow_uid = ?", (uid,))}


def test_every_example_is_deployed(env: Env) -> None:
    uids = {r["uid"] for r in env.rt.store.query("SELECT uid FROM flows")}
    assert uids == {
        "acme.demo.hello",
        "acme.demo.nightly",
        "acme.analytics.after_ingest",
        "acme.analytics.dbt_daily",
        "acme.analytics.fanout_regions",
        "acme.analytics.ingest_orders",
        "acme.analytics.report_child",
        "acme.analytics.report_parent",
        "acme.ops.cleanup_with_errors",
        "acme.ops.deploy_hook",
        "acme.ops.python_report",
    }


# -- demo ---------------------------------------------------------------------------------------------------------


def test_hello_greets_the_default_and_a_given_name(env: Env) -> None:
    execution = env.rt.run("acme.demo.hello")
    assert execution["state"] == "SUCCESS"
    assert execution["outputs"] == {"greeting": "greeted world"}
    assert env.rt.states(execution) == {"greet": "SUCCESS", "answer": "SUCCESS"}
    assert "Hello, world! This is acme.demo.hello." in execution["logs"]

    execution = env.rt.run("acme.demo.hello", name="Ada")
    assert execution["state"] == "SUCCESS"
    assert execution["outputs"] == {"greeting": "greeted Ada"}
    assert "Hello, Ada! This is acme.demo.hello." in execution["logs"]
    assert execution["labels"].get("team") == "platform"


def test_nightly_reports_disk_and_prunes_old_temporary_files(env: Env) -> None:
    old = env.tmpdir / "gitsync-old-file"
    fresh = env.tmpdir / "gitsync-fresh-file"
    other = env.tmpdir / "unrelated-old-file"
    for path in (old, fresh, other):
        path.write_text("x")
    ten_days_ago = time.time() - 10 * 86400
    for path in (old, other):
        os.utime(path, (ten_days_ago, ten_days_ago))

    execution = env.rt.run("acme.demo.nightly")
    assert execution["state"] == "SUCCESS", execution["error"]
    assert env.rt.states(execution) == {"disk_report": "SUCCESS", "prune_tmp": "SUCCESS"}
    report = _task(execution, "disk_report")
    assert report["outputs"]["vars"] == {"checked": True}
    assert report["outputs"]["exitCode"] == 0
    assert any("%" in line for line in execution["logs"]), "df's line was not logged"
    assert not old.exists(), "a gitsync-* file older than 7 days was not pruned"
    assert fresh.exists() and other.exists()


# -- analytics ----------------------------------------------------------------------------------------------------


def test_fanout_regions_processes_every_region(env: Env) -> None:
    execution = env.rt.run("acme.analytics.fanout_regions")
    assert execution["state"] == "SUCCESS", execution["error"]
    states = env.rt.states(execution)
    for region in ("eu-west", "us-east", "ap-south"):
        assert states[f"extract[{region}]"] == "SUCCESS"
        assert states[f"report[{region}]"] == "SUCCESS"
        assert _task(execution, "extract", region)["outputs"] == {"value": f"extracted {region}"}
        assert f"{region}: extracted {region}" in execution["logs"]
    assert states["done"] == "SUCCESS"
    assert "all regions processed" in execution["logs"]


def test_fanout_regions_skips_the_region_switched_off(env: Env) -> None:
    execution = env.rt.run("acme.analytics.fanout_regions", skip="us-east")
    assert execution["state"] == "SUCCESS", execution["error"]
    states = env.rt.states(execution)
    assert states["extract[us-east]"] == "SKIPPED"
    assert states["extract[eu-west]"] == "SUCCESS" and states["extract[ap-south]"] == "SUCCESS"
    assert states["report[us-east]"] == "SUCCESS"
    assert "us-east: skipped" in execution["logs"]
    assert "eu-west: extracted eu-west" in execution["logs"]
    assert "ap-south: extracted ap-south" in execution["logs"]


def test_fanout_regions_takes_regions_as_json_input(env: Env) -> None:
    execution = env.rt.run("acme.analytics.fanout_regions", regions='["north", "south"]')
    assert execution["state"] == "SUCCESS", execution["error"]
    assert {k for k in env.rt.states(execution) if k.startswith("extract[")} == {"extract[north]", "extract[south]"}


def test_report_parent_gets_the_child_outputs(env: Env) -> None:
    execution = env.rt.run("acme.analytics.report_parent")
    assert execution["state"] == "SUCCESS", execution["error"]
    child_run = _task(execution, "child")
    assert child_run["state"] == "SUCCESS"
    summary = child_run["outputs"]["outputs"]["summary"]
    assert re.fullmatch(r"report for \d{4}-\d{2}: 42 rows", summary), summary
    assert f"child said: {summary}" in execution["logs"]
    child = env.rt.execution(child_run["outputs"]["executionId"])
    assert (child["flow_uid"], child["state"], child["parent_execution"]) == (
        "acme.analytics.report_child",
        "SUCCESS",
        execution["id"],
    )
    assert child["outputs"] == {"summary": summary}


def test_ingest_orders_loads_the_csv_and_after_ingest_remembers_the_count(env: Env) -> None:
    rt = env.rt
    before = _ids(rt, "acme.analytics.after_ingest")
    execution = rt.run("acme.analytics.ingest_orders", source_url=f"{env.http.url}/orders.csv")
    assert execution["state"] == "SUCCESS", execution["error"]
    assert rt.states(execution) == {"download": "SUCCESS", "load": "SUCCESS", "count": "SUCCESS", "check": "SUCCESS"}
    assert "/orders.csv" in env.http.gets
    assert _task(execution, "count")["outputs"]["row"] == {"n": 3}
    assert execution["outputs"] == {"rows": 3}
    with duckdb.connect(str(env.tmp / "analytics.duckdb"), read_only=True) as db:
        assert db.execute("SELECT customer FROM orders ORDER BY order_id").fetchall() == [("ada",), ("bob",), ("eve",)]

    after = _wait_for_new(rt, "acme.analytics.after_ingest", before)
    assert after["state"] == "SUCCESS", after["error"]
    assert after["trigger_uid"] and "on_ingest_success" in after["trigger_uid"]
    assert rt.states(after) == {"remember": "SUCCESS", "announce": "SUCCESS"}
    assert f"ingest_orders {execution['id']} finished in state SUCCESS" in after["logs"]
    assert rt.runs.kv.get("acme.analytics", "last_orders_rows") in (3, "3")


def test_ingest_orders_fails_below_min_rows_and_after_ingest_does_not_fire(env: Env) -> None:
    rt = env.rt
    before = _ids(rt, "acme.analytics.after_ingest")
    execution = rt.run("acme.analytics.ingest_orders", source_url=f"{env.http.url}/orders.csv", min_rows=10)
    assert execution["state"] == "FAILED"
    assert rt.states(execution)["check"] == "FAILED"
    assert "only 3 orders were loaded" in (execution["error"] or "")
    time.sleep(1)  # a Flow trigger would have created its execution by now; absence cannot be awaited otherwise
    assert _ids(rt, "acme.analytics.after_ingest") == before


def test_ingest_orders_without_a_source_url_loads_the_sample_export(env: Env) -> None:
    gets = len(env.http.gets)
    execution = env.rt.run("acme.analytics.ingest_orders")
    assert execution["state"] == "SUCCESS", execution["error"]
    assert env.rt.states(execution) == {
        "download": "SKIPPED",
        "load": "SUCCESS",
        "count": "SUCCESS",
        "check": "SUCCESS",
    }
    assert execution["outputs"] == {"rows": 3}
    assert len(env.http.gets) == gets


def test_ingest_orders_from_a_refused_url_fails_at_once_not_once_per_retry(env: Env) -> None:
    execution = env.rt.run("acme.analytics.ingest_orders", source_url=f"http://127.0.0.1:{free_port()}/orders.csv")
    assert execution["state"] == "FAILED"
    downloads = [(r["attempt"], r["state"]) for r in execution["task_runs"] if r["task_id"] == "download"]
    assert downloads == [(1, "FAILED")]
    assert "connection refused" in execution["error"]
    assert any("permanent error" in line and "not retried" in line for line in execution["logs"])


def test_dbt_daily_builds_the_shop_project(env: Env) -> None:
    execution = env.rt.run("acme.analytics.dbt_daily")
    assert execution["state"] == "SUCCESS", (execution["error"], execution["logs"][-20:])
    assert env.rt.states(execution) == {"build": "SUCCESS"}
    with duckdb.connect(str(env.tmp / "shop.duckdb"), read_only=True) as db:
        tables = {row[0] for row in db.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert {"raw_customers", "raw_orders", "stg_orders", "customer_revenue"} <= tables
        assert db.execute("SELECT count(*) FROM customer_revenue").fetchone()[0] > 0
    assert not (ROOT / "examples" / "dbt" / "shop" / "target").exists(), "dbt wrote into the source folder"


# -- ops ----------------------------------------------------------------------------------------------------------


def test_python_report_writes_a_file_and_outputs_a_count(env: Env) -> None:
    execution = env.rt.run("acme.ops.python_report")
    assert execution["state"] == "SUCCESS", execution["error"]
    assert env.rt.states(execution) == {"workdir": "SUCCESS", "summarize": "SUCCESS", "log_count": "SUCCESS"}
    assert _task(execution, "summarize")["outputs"]["vars"] == {"count": 3}
    assert "3 services summarised" in execution["logs"]
    files = _task(execution, "workdir")["outputs"]["outputFiles"]
    assert set(files) == {"report.json"}
    stored = _stored_file(env, execution["id"], files["report.json"])
    assert json.loads(stored.read_text()) == {"services": ["api", "worker", "scheduler"]}


def _stored_file(env: Env, execution_id: str, uri: str) -> Path:
    """The file behind a kestra:/// URI of an execution (stored under <data_dir>/executions/<id>/)."""
    assert uri.startswith("kestra:///") and f"/executions/{execution_id}/" in uri, uri
    relative = uri.split(f"/executions/{execution_id}/", 1)[1]
    path = env.rt.data_dir / "executions" / execution_id / relative
    assert path.is_file(), path
    return path


def test_cleanup_succeeds_without_alerting(env: Env) -> None:
    archive = env.tmpdir / "gitsync-archive"
    if archive.is_file():
        archive.unlink()
    posts = len(env.http.posts)
    execution = env.rt.run("acme.ops.cleanup_with_errors")
    assert execution["state"] == "SUCCESS", execution["error"]
    assert env.rt.states(execution) == {
        "rotate": "SUCCESS",
        "archive": "SUCCESS",
        "verify": "SUCCESS",
        "gate": "SUCCESS",
        "always": "SUCCESS",
    }
    assert (archive / "last.txt").read_text() == "archived\n"
    assert "cleanup finished" in execution["logs"]
    assert len(env.http.posts) == posts, "the Slack alert fired on success"


def test_cleanup_failure_alerts_slack_and_still_runs_finally(env: Env) -> None:
    archive = env.tmpdir / "gitsync-archive"
    if archive.is_dir():
        for child in archive.iterdir():
            child.unlink()
        archive.rmdir()
    archive.write_text("a file where the archive folder should be")  # `mkdir -p` fails, even as root
    posts = len(env.http.posts)
    try:
        execution = env.rt.run("acme.ops.cleanup_with_errors")
    finally:
        archive.unlink()
    assert execution["state"] == "FAILED"
    states = env.rt.states(execution)
    assert states["archive"] == "FAILED"
    assert states["rotate_failed"] == "SUCCESS"  # the Sequential's local errors branch
    assert states["rotate"] == "FAILED"
    assert "verify" not in states and "gate" not in states
    assert states["alert"] == "SUCCESS"
    assert states["always"] == "SUCCESS"
    assert "rotation failed in rotate_failed" in execution["logs"]  # `task.id` is the task being rendered
    assert "cleanup finished" in execution["logs"]
    new_posts = env.http.posts[posts:]
    assert len(new_posts) == 1
    path, body = new_posts[0]
    assert path == "/slack/hook"
    assert json.loads(body) == {"text": f"acme.ops.cleanup_with_errors failed: execution {execution['id']}"}


def test_deploy_hook_announces_a_production_deploy(env: Env) -> None:
    rt = env.rt
    assert rt.runs.webhook("acme.ops", "deploy_hook", "wrong-key", {"body": {}}) is None
    body = {"environment": "production", "service": "api", "version": "1.4.2"}
    execution_id = rt.runs.webhook("acme.ops", "deploy_hook", DEPLOY_KEY, {"body": body, "headers": {}})
    assert execution_id is not None
    assert rt.runs.wait(execution_id, timeout=30)
    execution = rt.execution(execution_id)
    assert execution["state"] == "SUCCESS", execution["error"]
    states = rt.states(execution)
    assert states == {"is_production": "SUCCESS", "announce": "SUCCESS"}
    assert "api 1.4.2 is live in production" in execution["logs"]


def test_deploy_hook_notes_other_environments(env: Env) -> None:
    rt = env.rt
    body = {"environment": "staging", "service": "api", "version": "1.4.3"}
    execution_id = rt.runs.webhook("acme.ops", "deploy_hook", DEPLOY_KEY, {"body": body, "headers": {}})
    assert execution_id is not None
    assert rt.runs.wait(execution_id, timeout=30)
    execution = rt.execution(execution_id)
    assert execution["state"] == "SUCCESS", execution["error"]
    assert rt.states(execution) == {"is_production": "SUCCESS", "note": "SUCCESS"}
