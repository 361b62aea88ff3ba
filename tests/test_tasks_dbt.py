"""dbt runs for real: the example flow dbt_daily.yaml against examples/dbt/shop (dbt-duckdb)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from taskctx import make_context

from plugins.dbt.cli import Build, DbtCLI, Deps, _with_log_format, resolve_project_dir
from plugins.scripts.execution import docker_answers
from runner.api import MISSING, TaskFailed

ROOT = Path(__file__).resolve().parents[1]
FLOW = ROOT / "examples/flows/analytics/dbt_daily.yaml"
PROJECT = ROOT / "examples/dbt/shop"


@pytest.fixture(autouse=True)
def dbt_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """dbt comes with the test extra (`pip install -e '.[test]'`); without it these tests fail, not skip."""
    if not (Path(sys.executable).parent / "dbt").exists() and shutil.which("dbt") is None:
        pytest.fail("dbt is not installed: install the test extra (pip install -e '.[test]', which pulls gitsync[dbt])")
    monkeypatch.chdir(ROOT)  # projectDir: examples/dbt/shop resolves against gitsync's working directory


def profiles(path: Path) -> str:
    return f"shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: {path}\n      threads: 2\n"


def test_example_flow_builds_the_shop_project(tmp_path: Path) -> None:
    flow = yaml.safe_load(FLOW.read_text())
    task = DbtCLI.model_validate(flow["tasks"][0])
    ctx = make_context(tmp_path, task_id=task.id)
    outputs = task.run(ctx)
    assert outputs["exitCode"] == 0
    counts = outputs["runResults"]["counts"]
    assert counts == {"success": 4, "pass": 6}
    assert set(outputs["outputFiles"]) >= {"run_results.json", "manifest.json"}
    assert any("dbt model.shop.customer_revenue: success in" in m for m in ctx.logger.messages("INFO"))
    assert not (PROJECT / "target").exists() and (ctx.workdir / "shop/target/run_results.json").exists()
    database = yaml.safe_load(task.profiles)["shop"]["outputs"]["dev"]["path"]
    with duckdb.connect(database, read_only=True) as conn:
        rows = conn.execute("select name, orders, revenue from customer_revenue order by customer_id").fetchall()
    assert [(name, orders, float(revenue)) for name, orders, revenue in rows] == [
        ("Ada", 2, 25.0),
        ("Grace", 1, 7.0),
        ("Linus", 1, 12.5),
    ]


def test_failing_test_fails_the_task_with_results(tmp_path: Path) -> None:
    project = tmp_path / "src/shop"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("target", "logs"))
    (project / "tests/revenue_is_not_negative.sql").write_text("select * from {{ ref('customer_revenue') }}\n")
    ctx = make_context(tmp_path, task_id="build")
    task = DbtCLI.model_validate(
        {
            "id": "build",
            "type": DbtCLI.type_name,
            "projectDir": str(project),
            "profiles": profiles(tmp_path / "shop.duckdb"),
            "commands": ["dbt build"],
            "storeManifest": {"key": "manifest"},
        }
    )
    with pytest.raises(TaskFailed) as failed:
        task.run(ctx)
    assert "exit code 1" in failed.value.message
    assert failed.value.outputs["runResults"]["counts"]["fail"] == 1
    assert ctx.kv.get("company.team", "manifest") is MISSING  # stored only on success


def test_legacy_tasks_and_manifest_store(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, task_id="legacy")
    common: dict[str, Any] = {"projectDir": "examples/dbt/shop", "profiles": profiles(tmp_path / "legacy.duckdb")}
    Deps.model_validate({"id": "legacy", "type": Deps.type_name, **common}).run(ctx)
    build = Build.model_validate(
        {"id": "legacy", "type": Build.type_name, "select": ["raw_customers"], "target": "dev", **common}
    )
    outputs = build.run(ctx)
    assert [item["uniqueId"] for item in outputs["runResults"]["results"]] == ["seed.shop.raw_customers"]
    cli = DbtCLI.model_validate(
        {"id": "legacy", "type": DbtCLI.type_name, "commands": ["dbt parse"], "storeManifest": {"key": "m"}, **common}
    )
    cli.run(ctx)
    assert "nodes" in ctx.kv.get("company.team", "m")


@pytest.mark.parametrize(
    ("commands", "log_format", "expected"),
    [
        (["dbt build"], "JSON", ["dbt build --log-format json"]),
        (["dbt --version", "echo dbt build"], "JSON", ["dbt --version", "echo dbt build"]),
        (["dbt run --log-format text"], "JSON", ["dbt run --log-format text"]),
        (["dbt test"], "DEFAULT", ["dbt test"]),
    ],
)
def test_log_format_flag(commands: list[str], log_format: str, expected: list[str]) -> None:
    assert _with_log_format(commands, log_format) == expected


def test_project_dir_resolution(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    assert resolve_project_dir(ctx, "examples/dbt/shop") == PROJECT
    assert resolve_project_dir(ctx, str(PROJECT)) == PROJECT
    (ctx.workdir / "examples/dbt/shop").mkdir(parents=True)
    (ctx.workdir / "examples/dbt/shop/dbt_project.yml").write_text("name: x\n")
    assert resolve_project_dir(ctx, "examples/dbt/shop") == (ctx.workdir / "examples/dbt/shop").resolve()
    with pytest.raises(TaskFailed, match=r"no dbt_project\.yml"):
        resolve_project_dir(ctx, "nowhere")


@pytest.mark.parametrize(
    ("engine", "image"), [(None, "ghcr.io/kestra-io/dbt-duckdb:latest"), ("FUSION", "ghcr.io/kestra-io/dbt-fusion")]
)
def test_engine_picks_the_docker_image_when_none_is_given(tmp_path: Path, engine: str | None, image: str) -> None:
    if docker_answers():
        pytest.skip("a Docker engine answers here; this test reads the image from the no-Docker fallback warning")
    ctx = make_context(tmp_path, task_id="dbt", allow_docker_fallback=True)
    props: dict[str, Any] = {
        "id": "dbt",
        "type": DbtCLI.type_name,
        "taskRunner": {"type": "io.kestra.plugin.scripts.runner.docker.Docker"},
        "commands": ["echo no dbt needed"],
        "parseRunResults": False,
    }
    task = DbtCLI.model_validate({**props, **({"engine": engine} if engine else {})})
    assert task.run(ctx)["exitCode"] == 0
    assert image in ctx.warnings[0]
    # an image given on the task wins over the engine's
    explicit = DbtCLI.model_validate({**props, "engine": "FUSION", "containerImage": "my/dbt:1"})
    other = make_context(tmp_path / "explicit", task_id="dbt", allow_docker_fallback=True)
    explicit.run(other)
    assert "my/dbt:1" in other.warnings[0]


def test_deps_takes_the_run_flags_as_kestra_does(tmp_path: Path) -> None:
    # Kestra's Deps extends AbstractRun: target, select, ... are accepted and passed on
    task = Deps.model_validate({"id": "deps", "type": Deps.type_name, "target": "dev", "thread": 2})
    assert task.dbt_commands(make_context(tmp_path, task_id="deps")) == ["dbt deps --threads 2 --target dev"]
