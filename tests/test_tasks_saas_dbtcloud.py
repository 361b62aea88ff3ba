"""dbt Cloud `TriggerRun` and `CheckStatus` against dbt Cloud's API v2 played on 127.0.0.1 from its documentation
(tests/saas/dbtcloud.py): run states while polling, step logs, artifacts stored, errors in dbt Cloud's words.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime import Runtime
from saas.dbtcloud import RUN_RESULTS, FakeDbtCloud
from saas.jobs_base import ApiServer, serve
from taskctx import make_context

from plugins.dbt.cloud import CheckStatus, TriggerRun
from runner.api import TaskFailed

ACCOUNT, TOKEN = 12345, "dbtc_service-token-Zx81/q"


@pytest.fixture(scope="session")
def dbt_server() -> Iterator[tuple[FakeDbtCloud, ApiServer]]:
    provider = FakeDbtCloud(ACCOUNT, TOKEN)
    with serve(provider) as server:
        yield provider, server


@pytest.fixture
def dbt(dbt_server: tuple[FakeDbtCloud, ApiServer]) -> Iterator[tuple[FakeDbtCloud, str]]:
    provider, server = dbt_server
    provider.reset()
    yield provider, server.url
    assert provider.violations == []


def trigger(url: str, **props: Any) -> TriggerRun:
    base = {"id": "run", "type": TriggerRun.type_name, "baseUrl": url, "accountId": str(ACCOUNT), "token": TOKEN,
            "jobId": "396284", "pollFrequency": "PT0.01S"}  # fmt: skip
    return TriggerRun.model_validate({**base, **props})


def test_flow_runs_a_job_queued_starting_running_success(
    tmp_path: Path, dbt: tuple[FakeDbtCloud, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, url = dbt
    provider.add(396284, [1, 2, 3, 3, 10])
    monkeypatch.setenv("SECRET_DBT_CLOUD_API_TOKEN", base64.b64encode(TOKEN.encode()).decode())
    monkeypatch.setenv("SECRET_DBT_CLOUD_ACCOUNT_ID", base64.b64encode(str(ACCOUNT).encode()).decode())
    runtime = Runtime(tmp_path)
    try:
        runtime.deploy({"dbt.yaml": f"""
            id: dbt_trigger_job_run
            namespace: company.team
            tasks:
              - id: trigger_run
                type: io.kestra.plugin.dbt.cloud.TriggerRun
                baseUrl: {url}
                accountId: "{{{{ secret('DBT_CLOUD_ACCOUNT_ID') }}}}"
                token: "{{{{ secret('DBT_CLOUD_API_TOKEN') }}}}"
                jobId: "396284"
                wait: true
                pollFrequency: PT0.01S
              - id: results
                type: io.kestra.plugin.core.log.Log
                message: "run {{{{ outputs.trigger_run.runId }}}}: {{{{ read(outputs.trigger_run.runResults) }}}}"
        """})  # fmt: skip
        execution = runtime.run("company.team.dbt_trigger_job_run")
    finally:
        runtime.close()
    assert execution["state"] == "SUCCESS", execution["logs"]
    outputs = execution["task_runs"][0]["outputs"]
    assert outputs["runId"] == 70001
    assert outputs["runResults"].startswith("kestra:///") and outputs["runResults"].endswith("run_results.json")
    assert outputs["manifest"].endswith("manifest.json")
    logs = execution["logs"]
    assert "dbt Cloud started run 70001 of job 396284 (Queued)" in logs
    assert [line for line in logs if line.startswith("dbt Cloud run 70001:")] == [
        "dbt Cloud run 70001: Starting after 1 minutes",
        "dbt Cloud run 70001: Running after 2 minutes",
        "dbt Cloud run 70001: Success after 4 minutes",
    ]
    assert "[Step Invoke dbt with `dbt build`]: 3: dbt build: model orders, step log line 3" in logs
    assert "dbt model.shop.orders: success in 1.25 s (SELECT 4)" in logs
    assert "dbt Cloud run results: 1 pass, 1 success" in logs
    assert f"run 70001: {json.dumps(RUN_RESULTS)}" in logs
    assert all(TOKEN not in line for line in logs)
    first = provider.requests[0]
    assert (first.method, first.path) == ("POST", f"/api/v2/accounts/{ACCOUNT}/jobs/396284/run/")
    assert first.json() == {"cause": "Triggered by gitsync."} and first.headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    ("end", "said"),
    [
        (20, 'Error after 3 minutes: Database Error in model orders: relation "raw.orders" does not exist'),
        (30, "Cancelled after 3 minutes"),
    ],
)
def test_run_that_errors_or_is_cancelled_fails(
    tmp_path: Path, dbt: tuple[FakeDbtCloud, str], end: int, said: str
) -> None:
    provider, url = dbt
    provider.add(396284, [1, 3, 3, end])
    with pytest.raises(TaskFailed) as failed:
        trigger(url).run(make_context(tmp_path))
    assert failed.value.message == f"dbt Cloud run 70001 ended {said}"
    assert failed.value.outputs == {"runId": 70001}
    assert not any("artifacts" in r.path for r in provider.requests)


def test_overrides_are_sent_as_documented(tmp_path: Path, dbt: tuple[FakeDbtCloud, str]) -> None:
    provider, url = dbt
    provider.add(396284, [1])
    task = trigger(
        url, wait=False, cause="nightly", gitBranch="main", threadsOverride="8", generateDocsOverride="true",
        timeoutSecondsOverride=600, stepsOverride=["dbt seed", "dbt build --select tag:daily"],
        schemaOverride="analytics_ci",
    )  # fmt: skip
    assert task.run(make_context(tmp_path)) == {"runId": 70001, "runResults": None, "manifest": None}
    assert provider.requests[0].json() == {
        "cause": "nightly", "git_branch": "main", "schema_override": "analytics_ci", "threads_override": 8,
        "generate_docs_override": True, "timeout_seconds_override": 600,
        "steps_override": ["dbt seed", "dbt build --select tag:daily"],
    }  # fmt: skip
    assert len(provider.requests) == 1


def test_check_status_without_artifacts(tmp_path: Path, dbt: tuple[FakeDbtCloud, str]) -> None:
    provider, url = dbt
    provider.add(396284, [1, 10])
    run_id = trigger(url, wait=False).run(make_context(tmp_path))["runId"]
    provider.artifacts = False
    check = CheckStatus.model_validate(
        {"id": "check", "type": CheckStatus.type_name, "baseUrl": url, "accountId": ACCOUNT, "token": TOKEN,
         "runId": str(run_id), "pollFrequency": "PT0.01S"}
    )  # fmt: skip
    assert check.run(make_context(tmp_path)) == {"runResults": None, "manifest": None}
    assert [r.path.rsplit("/", 1)[-1] for r in provider.requests[-2:]] == ["run_results.json", "manifest.json"]


def test_unknown_job_bad_token_and_unknown_run(tmp_path: Path, dbt: tuple[FakeDbtCloud, str]) -> None:
    _, url = dbt
    with pytest.raises(TaskFailed) as failed:
        trigger(url, jobId="1").run(make_context(tmp_path))
    assert failed.value.message == (
        f"dbt Cloud refused POST /api/v2/accounts/{ACCOUNT}/jobs/1/run/ (HTTP 404, not found): "
        "The requested resource was not found."
    )
    with pytest.raises(TaskFailed) as failed:
        trigger(url, token="dbtc_revoked-token").run(make_context(tmp_path))
    assert failed.value.message == (
        f"dbt Cloud refused POST /api/v2/accounts/{ACCOUNT}/jobs/396284/run/ (HTTP 401, the credentials were not "
        "accepted): Invalid token."
    )
    check = CheckStatus.model_validate(
        {"id": "check", "type": CheckStatus.type_name, "baseUrl": url, "accountId": ACCOUNT, "token": TOKEN,
         "runId": "42"}
    )  # fmt: skip
    with pytest.raises(TaskFailed, match=r"refused GET /api/v2/accounts/12345/runs/42/ \(HTTP 404, not found\)"):
        check.run(make_context(tmp_path))


def test_server_errors_are_tried_again(tmp_path: Path, dbt: tuple[FakeDbtCloud, str]) -> None:
    provider, url = dbt
    provider.add(396284, [10])
    provider.fail(503, {"status": {"code": 503, "is_success": False, "user_message": "Service unavailable"}})
    ctx = make_context(tmp_path)
    assert trigger(url, initialDelayMs=0).run(ctx)["runId"] == 70001
    assert ctx.logger.messages("WARN") == [
        f"dbt Cloud answered HTTP 503 to POST /api/v2/accounts/{ACCOUNT}/jobs/396284/run/; trying again in 0 s "
        "(attempt 2 of 3)"
    ]


def test_check_status_stores_results_without_parsing(tmp_path: Path, dbt: tuple[FakeDbtCloud, str]) -> None:
    provider, url = dbt
    provider.add(396284, [1, 3, 10])
    run_id = trigger(url, wait=False).run(make_context(tmp_path))["runId"]
    check = CheckStatus.model_validate(
        {"id": "check", "type": CheckStatus.type_name, "baseUrl": url, "accountId": str(ACCOUNT), "token": TOKEN,
         "runId": str(run_id), "pollFrequency": "PT0.01S", "parseRunResults": False}
    )  # fmt: skip
    ctx = make_context(tmp_path)
    outputs = check.run(ctx)
    assert json.loads(ctx.storage.path(outputs["runResults"]).read_text()) == RUN_RESULTS
    assert ctx.storage.path(outputs["manifest"]).name.endswith("manifest.json")
    assert not [m for m in ctx.logger.messages() if m.startswith("dbt model.")]
    assert "dbt Cloud run 70001: Running after 1 minutes" in ctx.logger.messages("INFO")
