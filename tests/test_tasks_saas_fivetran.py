"""Fivetran `connectors.Sync` against a Fivetran API played on 127.0.0.1 from its docs (tests/saas/fivetran.py).

Flows run through the real runtime (git, sync, SQLite, the engine), with the key and secret from `secret()`; the
server checks every request (Basic auth, paths, the `force` body) and scripts each connector's sync.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime import Runtime
from saas.fivetran import FakeFivetran
from saas.jobs_base import ApiServer, serve
from services import free_port
from taskctx import make_context

from plugins.fivetran.connectors import Sync
from runner.api import TaskFailed

KEY, SECRET = "fivetran-key-3f9a", "fivetran-secret-Zq8/x+y"


@pytest.fixture(scope="session")
def fivetran_server() -> Iterator[tuple[FakeFivetran, ApiServer]]:
    provider = FakeFivetran(KEY, SECRET)
    with serve(provider) as server:
        yield provider, server


@pytest.fixture
def fivetran(fivetran_server: tuple[FakeFivetran, ApiServer]) -> Iterator[tuple[FakeFivetran, str]]:
    provider, server = fivetran_server
    provider.reset()
    yield provider, server.url
    assert provider.violations == []


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("SECRET_FIVETRAN_API_KEY", base64.b64encode(KEY.encode()).decode())
    monkeypatch.setenv("SECRET_FIVETRAN_API_SECRET", base64.b64encode(SECRET.encode()).decode())
    rt = Runtime(tmp_path)
    yield rt
    rt.close()


def flow(url: str, connector: str, extra: str = "") -> str:
    return f"""
    id: facebook
    namespace: prod.staging
    tasks:
      - id: sync
        type: io.kestra.plugin.fivetran.connectors.Sync
        connectorId: {connector}
        apiKey: "{{{{ secret('FIVETRAN_API_KEY') }}}}"
        apiSecret: "{{{{ secret('FIVETRAN_API_SECRET') }}}}"
        baseUrl: {url}
        pollFrequency: PT0.01S
        {extra}
    """


def run_flow(runtime: Runtime, text: str) -> dict[str, Any]:
    runtime.deploy({"facebook.yaml": text})
    execution = runtime.run("prod.staging.facebook")
    for line in execution["logs"]:
        assert KEY not in line and SECRET not in line
    return execution


def test_sync_waits_through_syncing_to_success(runtime: Runtime, fivetran: tuple[FakeFivetran, str]) -> None:
    provider, url = fivetran
    provider.add("facebook", polls=3, outcome="succeeded")
    execution = run_flow(runtime, flow(url, "facebook"))
    assert execution["state"] == "SUCCESS", execution["logs"]
    assert provider.connectors["facebook"].syncs == [False]
    logs = "\n".join(execution["logs"])
    assert "Sync has been successfully triggered for connector with id 'facebook'" in logs
    assert "sync state: syncing" in logs and "synced at 2024-05-01T08:00:02Z" in logs
    calls = [(r.method, r.path) for r in provider.requests]
    assert calls[:2] == [("GET", "/v1/connectors/facebook"), ("POST", "/v1/connectors/facebook/sync")]
    assert calls[2:] == [("GET", "/v1/connectors/facebook")] * 4  # three reads while syncing, the fourth ends it


def test_failed_sync_fails_the_task_with_fivetran_reason(runtime: Runtime, fivetran: tuple[FakeFivetran, str]) -> None:
    provider, url = fivetran
    provider.add("facebook", polls=1, outcome="failed", reason="Cannot connect to Facebook Ads: token expired")
    execution = run_flow(runtime, flow(url, "facebook"))
    assert execution["state"] == "FAILED"
    assert any(
        "Fivetran connector 'facebook' sync failed at 2024-05-01T08:00:02Z: Cannot connect to Facebook Ads: "
        "token expired" in line
        for line in execution["logs"]
    ), execution["logs"]


def test_unknown_connector_names_fivetran_404(runtime: Runtime, fivetran: tuple[FakeFivetran, str]) -> None:
    provider, url = fivetran
    execution = run_flow(runtime, flow(url, "nope"))
    assert execution["state"] == "FAILED"
    assert any(
        "Fivetran refused GET /v1/connectors/nope (HTTP 404, not found): Connector with id 'nope' doesn't exist "
        "(NotFound_Connector)" in line
        for line in execution["logs"]
    ), execution["logs"]
    assert [r.method for r in provider.requests] == ["GET"]  # not found is not tried again


def test_wrong_secret_is_refused_and_never_shown(tmp_path: Path, fivetran: tuple[FakeFivetran, str]) -> None:
    provider, url = fivetran
    provider.add("facebook")
    wrong = "wrong-secret-9c1d"
    task = Sync.model_validate(
        {
            "id": "sync",
            "type": Sync.type_name,
            "apiKey": KEY,
            "apiSecret": wrong,
            "connectorId": "facebook",
            "baseUrl": url,
        }
    )
    with pytest.raises(TaskFailed) as failed:
        task.run(make_context(tmp_path))
    assert failed.value.message == (
        "Fivetran refused GET /v1/connectors/facebook (HTTP 401, the credentials were not accepted): "
        "Missing or incorrect API key/secret (AuthFailed)"
    )
    assert failed.value.permanent
    basic = base64.b64encode(f"{KEY}:{wrong}".encode()).decode()
    assert provider.requests[0].headers["authorization"] == f"Basic {basic}"


def test_rate_limit_is_waited_out(tmp_path: Path, fivetran: tuple[FakeFivetran, str]) -> None:
    provider, url = fivetran
    provider.add("facebook", polls=0)
    provider.fail(429, {"code": "TooManyRequests", "message": "Rate limit exceeded"}, times=2)
    task = Sync.model_validate(
        {
            "id": "sync",
            "type": Sync.type_name,
            "apiKey": KEY,
            "apiSecret": SECRET,
            "connectorId": "facebook",
            "baseUrl": url,
            "pollFrequency": "PT0.01S",
        }
    )
    ctx = make_context(tmp_path)
    assert task.run(ctx) == {}
    warnings = ctx.logger.messages("WARN")
    assert warnings == [
        "Fivetran answered HTTP 429 to GET /v1/connectors/facebook; trying again in 0 s (attempt 2 of 3)",
        "Fivetran answered HTTP 429 to GET /v1/connectors/facebook; trying again in 0 s (attempt 3 of 3)",
    ]


def test_rate_limit_past_max_attempts_fails(tmp_path: Path, fivetran: tuple[FakeFivetran, str]) -> None:
    provider, url = fivetran
    provider.add("facebook")
    provider.fail(429, {"code": "TooManyRequests", "message": "Rate limit exceeded"}, times=5)
    task = Sync.model_validate(
        {
            "id": "sync",
            "type": Sync.type_name,
            "apiKey": KEY,
            "apiSecret": SECRET,
            "connectorId": "facebook",
            "baseUrl": url,
            "maxAttempts": 2,
        }
    )
    with pytest.raises(TaskFailed) as failed:
        task.run(make_context(tmp_path))
    assert failed.value.message == (
        "Fivetran refused GET /v1/connectors/facebook (HTTP 429, too many requests: rate limited): "
        "Rate limit exceeded (TooManyRequests)"
    )
    assert not failed.value.permanent and len(provider.requests) == 2


def test_force_and_no_wait(tmp_path: Path, fivetran: tuple[FakeFivetran, str]) -> None:
    provider, url = fivetran
    provider.add("facebook", polls=100)
    task = Sync.model_validate(
        {
            "id": "sync",
            "type": Sync.type_name,
            "apiKey": KEY,
            "apiSecret": SECRET,
            "connectorId": "facebook",
            "baseUrl": url,
            "force": True,
            "wait": False,
        }
    )
    assert task.run(make_context(tmp_path)) == {}
    assert provider.connectors["facebook"].syncs == [True]
    assert provider.requests[1].json() == {"force": True}
    assert len(provider.requests) == 2


def test_max_duration_bounds_the_wait(tmp_path: Path, fivetran: tuple[FakeFivetran, str]) -> None:
    provider, url = fivetran
    provider.add("facebook", polls=10**9)
    task = Sync.model_validate(
        {
            "id": "sync",
            "type": Sync.type_name,
            "apiKey": KEY,
            "apiSecret": SECRET,
            "connectorId": "facebook",
            "baseUrl": url,
            "pollFrequency": "PT0.05S",
            "maxDuration": "PT0.3S",
        }
    )
    with pytest.raises(TaskFailed) as failed:
        task.run(make_context(tmp_path))
    assert failed.value.message == (
        "gave up waiting for Fivetran connector 'facebook' to finish its sync: it did not finish within "
        "maxDuration PT0.3S"
    )


def test_killed_while_waiting(tmp_path: Path, fivetran: tuple[FakeFivetran, str]) -> None:
    provider, url = fivetran
    provider.add("facebook", polls=10**9)
    task = Sync.model_validate(
        {
            "id": "sync",
            "type": Sync.type_name,
            "apiKey": KEY,
            "apiSecret": SECRET,
            "connectorId": "facebook",
            "baseUrl": url,
        }
    )
    ctx = make_context(tmp_path)
    ctx.cancelled.set()  # killed before the first wait: the default PT5S poll never sleeps
    with pytest.raises(TaskFailed, match="stopped while waiting for Fivetran connector 'facebook'"):
        task.run(ctx)


def test_unreachable_fivetran_is_a_permanent_failure(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    task = Sync.model_validate(
        {"id": "sync", "type": Sync.type_name, "apiKey": KEY, "apiSecret": SECRET, "connectorId": "facebook",
         "baseUrl": url}
    )  # fmt: skip
    with pytest.raises(TaskFailed) as failed:
        task.run(make_context(tmp_path))
    assert failed.value.message.startswith(f"Fivetran could not be reached at {url} (GET /v1/connectors/facebook): ")
    assert failed.value.permanent


def test_a_secret_the_provider_echoes_is_masked(tmp_path: Path, fivetran: tuple[FakeFivetran, str]) -> None:
    provider, url = fivetran
    provider.add("facebook")
    provider.fail(400, {"code": "InvalidInput", "message": f"API key {KEY} with secret {SECRET} is malformed"})
    task = Sync.model_validate(
        {"id": "sync", "type": Sync.type_name, "apiKey": KEY, "apiSecret": SECRET, "connectorId": "facebook",
         "baseUrl": url}
    )  # fmt: skip
    with pytest.raises(TaskFailed) as failed:
        task.run(make_context(tmp_path))
    assert failed.value.message == (
        "Fivetran refused GET /v1/connectors/facebook (HTTP 400): API key *** with secret *** is malformed "
        "(InvalidInput)"
    )
