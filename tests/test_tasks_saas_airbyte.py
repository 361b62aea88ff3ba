"""Airbyte `connections.Sync`/`CheckStatus` and `cloud.jobs.Sync` against Airbyte's APIs played on 127.0.0.1 from
their documentation (tests/saas/airbyte.py): job states while polling, the errors in Airbyte's words, secrets masked.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime import Runtime
from saas.airbyte import FakeAirbyte, FakeAirbyteCloud
from saas.jobs_base import ApiServer, serve
from taskctx import make_context

from plugins.airbyte import cloud, connections
from runner.api import TaskFailed

USER, PASSWORD = "airbyte", "pw-Airbyte/7+x"
CLIENT_ID, CLIENT_SECRET = "app-client-1", "app-secret-Qx9/z"
CLOUD_TOKEN = "cloud-token-8b1e5f"
CONN = "e3b1ce92-547c-436f-b1e8-23b6936c12cd"
OTHER = "e3b1ce92-547c-436f-b1e8-23b6936c12ab"


@pytest.fixture(scope="session")
def airbyte_server() -> Iterator[tuple[FakeAirbyte, ApiServer]]:
    provider = FakeAirbyte(USER, PASSWORD, CLIENT_ID, CLIENT_SECRET)
    with serve(provider) as server:
        yield provider, server


@pytest.fixture(scope="session")
def cloud_server() -> Iterator[tuple[FakeAirbyteCloud, ApiServer]]:
    provider = FakeAirbyteCloud(CLOUD_TOKEN, CLIENT_ID, CLIENT_SECRET)
    with serve(provider) as server:
        yield provider, server


@pytest.fixture
def airbyte(airbyte_server: tuple[FakeAirbyte, ApiServer]) -> Iterator[tuple[FakeAirbyte, str]]:
    provider, server = airbyte_server
    provider.reset()
    yield provider, server.url
    assert provider.violations == []


@pytest.fixture
def airbyte_cloud(
    cloud_server: tuple[FakeAirbyteCloud, ApiServer], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeAirbyteCloud, str]]:
    provider, server = cloud_server
    provider.reset()
    monkeypatch.setenv(cloud.URL_VARIABLE, server.url)
    yield provider, server.url
    assert provider.violations == []


def oss_task(url: str, **props: Any) -> connections.Sync:
    base = {"id": "sync", "type": connections.Sync.type_name, "url": url, "connectionId": CONN,
            "username": USER, "password": PASSWORD, "pollFrequency": "PT0.01S"}  # fmt: skip
    return connections.Sync.model_validate({**base, **props})


def test_flow_syncs_a_connection_pending_running_succeeded(
    tmp_path: Path, airbyte: tuple[FakeAirbyte, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, url = airbyte
    provider.add(CONN, ["pending", "running", "running", "succeeded"])
    monkeypatch.setenv("SECRET_AIRBYTE_PASSWORD", base64.b64encode(PASSWORD.encode()).decode())
    runtime = Runtime(tmp_path)
    try:
        runtime.deploy({"sync.yaml": f"""
            id: airbyte_sync
            namespace: company.team
            tasks:
              - id: data_ingestion
                type: io.kestra.plugin.airbyte.connections.Sync
                connectionId: {CONN}
                url: {url}/
                username: {USER}
                password: "{{{{ secret('AIRBYTE_PASSWORD') }}}}"
                pollFrequency: PT0.01S
              - id: done
                type: io.kestra.plugin.core.log.Log
                message: "job {{{{ outputs.data_ingestion.jobId }}}}, {{{{ outputs.data_ingestion.alreadyRunning }}}}"
        """})  # fmt: skip
        execution = runtime.run("company.team.airbyte_sync")
    finally:
        runtime.close()
    assert execution["state"] == "SUCCESS", execution["logs"]
    assert execution["task_runs"][0]["outputs"] == {"jobId": 101, "alreadyRunning": False}
    logs = execution["logs"]
    assert f"Airbyte started job 101 (pending) for connection {CONN}" in logs
    assert "attempt 0 INFO[main] replication read 3" in logs and "Airbyte job 101 succeeded after 1 attempt(s)" in logs
    assert "job 101, false" in logs
    assert all(PASSWORD not in line for line in logs)
    calls = [(r.method, r.path, r.json()) for r in provider.requests]
    assert (
        calls
        == [("POST", "/api/v1/connections/sync", {"connectionId": CONN})]
        + [("POST", "/api/v1/jobs/get", {"id": 101})] * 3
    )


def test_failed_job_after_a_retried_attempt(tmp_path: Path, airbyte: tuple[FakeAirbyte, str]) -> None:
    provider, url = airbyte
    provider.add(CONN, ["running", "incomplete", "running", "failed"])
    ctx = make_context(tmp_path)
    with pytest.raises(TaskFailed) as failed:
        oss_task(url).run(ctx)
    assert failed.value.message == (
        "Airbyte job 101 ended failed after 2 attempt(s): Source process exited with non-zero exit code 1: could "
        "not connect to the source"
    )
    assert failed.value.outputs == {"finalJobStatus": "failed"}
    assert "Airbyte job 101: an attempt failed, Airbyte started attempt 2" in ctx.logger.messages("WARN")


def test_cancelled_job_fails(tmp_path: Path, airbyte: tuple[FakeAirbyte, str]) -> None:
    provider, url = airbyte
    provider.add(CONN, ["pending", "running", "cancelled"])
    with pytest.raises(TaskFailed, match=r"^Airbyte job 101 ended cancelled after 1 attempt\(s\)$"):
        oss_task(url).run(make_context(tmp_path))


def test_active_sync_fails_or_is_reported(tmp_path: Path, airbyte: tuple[FakeAirbyte, str]) -> None:
    provider, url = airbyte
    provider.add(CONN, ["running"])
    assert oss_task(url, wait=False).run(make_context(tmp_path)) == {"jobId": 101, "alreadyRunning": False}
    with pytest.raises(TaskFailed) as failed:
        oss_task(url).run(make_context(tmp_path))
    assert failed.value.message == (
        f"Airbyte refused POST /api/v1/connections/sync (HTTP 409, a conflict): A sync is already running for: {CONN}"
        " (set failOnActiveSync: false to let it run)"
    )
    ctx = make_context(tmp_path)
    assert oss_task(url, failOnActiveSync=False).run(ctx) == {"jobId": None, "alreadyRunning": True}
    assert ctx.logger.messages("WARN")[0].startswith(f"Airbyte connection {CONN} is already syncing")


def test_unknown_connection_and_bad_password(tmp_path: Path, airbyte: tuple[FakeAirbyte, str]) -> None:
    _, url = airbyte
    with pytest.raises(TaskFailed) as failed:
        oss_task(url, connectionId=OTHER).run(make_context(tmp_path))
    assert failed.value.message == (
        "Airbyte refused POST /api/v1/connections/sync (HTTP 404, not found): Could not find configuration for "
        f"STANDARD_SYNC: {OTHER}."
    )
    with pytest.raises(TaskFailed) as failed:
        oss_task(url, password="nope-wrong-pw").run(make_context(tmp_path))
    assert failed.value.message == (
        "Airbyte refused POST /api/v1/connections/sync (HTTP 401, the credentials were not accepted): "
        "Unauthorized: invalid credentials"
    )
    assert failed.value.permanent


def test_application_credentials_and_check_status(tmp_path: Path, airbyte: tuple[FakeAirbyte, str]) -> None:
    provider, url = airbyte
    provider.add(CONN, ["running", "succeeded"])
    creds = {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}
    started = oss_task(url, username=None, password=None, applicationCredentials=creds, wait=False)
    job = started.run(make_context(tmp_path))["jobId"]
    check = connections.CheckStatus.model_validate(
        {"id": "check", "type": connections.CheckStatus.type_name, "url": url, "jobId": str(job),
         "applicationCredentials": creds, "pollFrequency": "PT0.01S"}
    )  # fmt: skip
    assert check.run(make_context(tmp_path)) == {"finalJobStatus": "succeeded"}
    tokens = [r for r in provider.requests if r.path == "/api/v1/applications/token"]
    assert len(tokens) == 2
    assert all(r.headers["authorization"].startswith("Bearer access-") for r in provider.requests if r not in tokens)


def test_check_status_of_unknown_job(tmp_path: Path, airbyte: tuple[FakeAirbyte, str]) -> None:
    _, url = airbyte
    check = connections.CheckStatus.model_validate(
        {"id": "check", "type": connections.CheckStatus.type_name, "url": url, "jobId": 970, "username": USER,
         "password": PASSWORD}
    )  # fmt: skip
    with pytest.raises(TaskFailed) as failed:
        check.run(make_context(tmp_path))
    assert failed.value.message == (
        "Airbyte refused POST /api/v1/jobs/get (HTTP 404, not found): Could not find job with id: 970"
    )


def cloud_task(**props: Any) -> cloud.Sync:
    base = {"id": "sync", "type": cloud.Sync.type_name, "connectionId": CONN, "token": CLOUD_TOKEN,
            "pollFrequency": "PT0.01S"}  # fmt: skip
    return cloud.Sync.model_validate({**base, **props})


def test_cloud_job_pending_running_succeeded(tmp_path: Path, airbyte_cloud: tuple[FakeAirbyteCloud, str]) -> None:
    provider, _ = airbyte_cloud
    provider.add(CONN, ["pending", "running", "running", "succeeded"])
    ctx = make_context(tmp_path)
    outputs = cloud_task().run(ctx)
    assert outputs == {"job": {
        "jobId": 101, "startTime": "2024-05-01T08:00:00Z", "lastUpdatedAt": "2024-05-01T08:03:00Z",
        "jobType": "sync", "status": "succeeded", "duration": "PT3M", "bytesSynced": 2048, "rowsSynced": 12,
    }}  # fmt: skip
    assert ctx.logger.messages("INFO")[-1] == "Airbyte Cloud job 101 succeeded: 12 rows, 2048 bytes"
    assert "Airbyte Cloud job 101: running" in ctx.logger.messages("INFO")
    assert provider.requests[0].json() == {"connectionId": CONN, "jobType": "sync"}
    assert provider.requests[0].headers["authorization"] == f"Bearer {CLOUD_TOKEN}"
    assert [r.path for r in provider.requests[1:]] == ["/v1/jobs/101"] * 3


@pytest.mark.parametrize("end", ["failed", "cancelled", "incomplete"])
def test_cloud_job_that_does_not_succeed_fails(
    tmp_path: Path, airbyte_cloud: tuple[FakeAirbyteCloud, str], end: str
) -> None:
    provider, _ = airbyte_cloud
    provider.add(CONN, ["pending", "running", end])
    with pytest.raises(TaskFailed) as failed:
        cloud_task().run(make_context(tmp_path))
    assert failed.value.message == f"Airbyte Cloud job 101 ended {end}"
    assert failed.value.outputs["job"]["status"] == end


def test_cloud_errors_in_airbyte_words(tmp_path: Path, airbyte_cloud: tuple[FakeAirbyteCloud, str]) -> None:
    with pytest.raises(TaskFailed) as failed:
        cloud_task(connectionId=OTHER).run(make_context(tmp_path))
    assert failed.value.message == (
        f"Airbyte Cloud refused POST /v1/jobs (HTTP 404, not found): Could not find a connection with id: {OTHER}"
    )
    with pytest.raises(TaskFailed) as failed:
        cloud_task(token="cloud-token-revoked").run(make_context(tmp_path))
    assert failed.value.message == (
        "Airbyte Cloud refused POST /v1/jobs (HTTP 401, the credentials were not accepted): The request is missing "
        "a valid access token"
    )
    assert "cloud-token-revoked" not in failed.value.message
    with pytest.raises(TaskFailed, match="Airbyte Cloud needs credentials"):
        cloud_task(token=None).run(make_context(tmp_path))


def test_cloud_client_credentials(tmp_path: Path, airbyte_cloud: tuple[FakeAirbyteCloud, str]) -> None:
    provider, url = airbyte_cloud
    provider.add(CONN, ["succeeded"])
    task = cloud_task(
        token=None, clientId=CLIENT_ID, clientSecret=CLIENT_SECRET, tokenURL=f"{url}/v1/applications/token"
    )
    assert task.run(make_context(tmp_path))["job"]["status"] == "succeeded"
    assert provider.requests[0].json() == {
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "grant-type": "client_credentials"
    }  # fmt: skip
    assert provider.requests[1].headers["authorization"] == "Bearer cloud-access-1"


def test_cloud_wait_false_returns_the_created_job(tmp_path: Path, airbyte_cloud: tuple[FakeAirbyteCloud, str]) -> None:
    provider, _ = airbyte_cloud
    provider.add(CONN, ["pending", "succeeded"])
    assert cloud_task(wait=False).run(make_context(tmp_path))["job"]["status"] == "pending"
    assert len(provider.requests) == 1
