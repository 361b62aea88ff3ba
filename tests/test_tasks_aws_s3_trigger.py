"""The S3 Trigger against moto's S3 server: new objects start one execution with `trigger.objects`, are moved or
deleted, and fire exactly once, also when the trigger's action fails half-way and across a daemon's restart."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import running_daemon
from gitservers import GitRepo
from runtime import Runtime
from s3_server import REGION, S3Server

from gitsync.schedule.polling import Poller

TRIGGER = "io.kestra.plugin.aws.s3.Trigger"


def trigger_flow(s3: S3Server, bucket: str, action: str = "MOVE", move_to: str | None = None) -> str:
    moved = (
        f"    moveTo:\n      key: done\n{f'      bucket: {move_to}' if move_to else ''}\n" if action == "MOVE" else ""
    )
    return (
        "id: landing\nnamespace: acme.aws\n"
        "tasks:\n  - id: seen\n    type: io.kestra.plugin.core.debug.Return\n"
        "    format: \"{{ trigger.objects | length }} {{ read(trigger.objects[0].uri) }} "
        "{{ trigger.objects[0].key }}\"\n"
        "triggers:\n"
        f"  - id: watch\n    type: {TRIGGER}\n    interval: PT1S\n    bucket: {bucket}\n    prefix: in/\n"
        f"    action: {action}\n{moved}"
        f"    endpointOverride: {s3.endpoint}\n    region: {REGION}\n"
        "    accessKeyId: \"{{ secret('AWS_KEY') }}\"\n    secretKeyId: \"{{ secret('AWS_SECRET') }}\"\n"
    )  # fmt: skip


@pytest.fixture
def secrets(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "SECRET_AWS_KEY": base64.b64encode(s3.key.encode()).decode(),
        "SECRET_AWS_SECRET": base64.b64encode(s3.secret.encode()).decode(),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def runtime(tmp_path: Path, secrets: dict[str, str]) -> Iterator[Runtime]:
    rt = Runtime(tmp_path)
    yield rt
    rt.close()


def keys(s3: S3Server, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", []))


def returned(runtime: Runtime, execution_id: str) -> str:
    assert runtime.runs.wait(execution_id, 60)
    execution = runtime.execution(execution_id)
    assert execution["state"] == "SUCCESS", execution["logs"]
    value: str = execution["task_runs"][0]["outputs"]["value"]
    return value


def test_new_objects_fire_once_then_are_moved(runtime: Runtime, s3: S3Server) -> None:
    bucket = f"gitsync-{uuid.uuid4().hex[:12]}"
    client = s3.bucket(bucket)
    runtime.deploy({"landing.yaml": trigger_flow(s3, bucket)})
    poller = Poller(runtime.runs, runtime.runs.factory.registry, runtime.data_dir)
    assert poller.tick(0.0) == []  # nothing there yet
    client.put_object(Bucket=bucket, Key="in/orders.csv", Body=b"id\n1\n")
    client.put_object(Bucket=bucket, Key="elsewhere/x.csv", Body=b"not under the prefix")
    assert poller.tick(0.5) == []  # its interval has not passed
    [first] = poller.tick(1.0)
    assert returned(runtime, first) == "1 id\n1\n in/orders.csv"
    trigger = runtime.execution(first)["trigger_vars"]
    [found] = json.loads(trigger)["objects"]
    assert found["key"] == "in/orders.csv" and found["size"] == 5 and found["uri"].startswith("kestra:///acme/aws/")
    assert keys(s3, bucket) == ["done/orders.csv", "elsewhere/x.csv"]
    assert poller.tick(2.0) == []  # moved: nothing new
    client.put_object(Bucket=bucket, Key="in/more.csv", Body=b"id\n2\n")
    [second] = poller.tick(3.0)
    assert returned(runtime, second) == "1 id\n2\n in/more.csv"
    assert poller.tick(4.0) == []


def test_a_failed_move_does_not_fire_the_objects_again(runtime: Runtime, s3: S3Server) -> None:
    bucket, archive = f"gitsync-{uuid.uuid4().hex[:12]}", f"gitsync-archive-{uuid.uuid4().hex[:8]}"
    client = s3.bucket(bucket)
    client.put_object(Bucket=bucket, Key="in/a.csv", Body=b"a")
    runtime.deploy({"landing.yaml": trigger_flow(s3, bucket, move_to=archive)})
    poller = Poller(runtime.runs, runtime.runs.factory.registry, runtime.data_dir)
    [fired] = poller.tick(0.0)  # the archive bucket does not exist yet: the move fails, the fire stands
    assert returned(runtime, fired) == "1 a in/a.csv"
    assert keys(s3, bucket) == ["in/a.csv"]
    s3.bucket(archive)
    restarted = Poller(runtime.runs, runtime.runs.factory.registry, runtime.data_dir)  # what a restart has
    assert restarted.tick(10.0) == []  # recorded as fired: moved now, not fired again
    assert keys(s3, bucket) == [] and keys(s3, archive) == ["done/a.csv"]
    executions = runtime.store.query("SELECT id FROM executions WHERE trigger_uid = 'acme.aws.landing/watch'")
    assert [row["id"] for row in executions] == [fired]


def test_action_none_fires_each_version_once(runtime: Runtime, s3: S3Server) -> None:
    bucket = f"gitsync-{uuid.uuid4().hex[:12]}"
    client = s3.bucket(bucket)
    client.put_object(Bucket=bucket, Key="in/a.csv", Body=b"v1")
    runtime.deploy({"landing.yaml": trigger_flow(s3, bucket, action="NONE")})
    poller = Poller(runtime.runs, runtime.runs.factory.registry, runtime.data_dir)
    [first] = poller.tick(0.0)
    assert returned(runtime, first) == "1 v1 in/a.csv"
    assert poller.tick(5.0) == []
    assert Poller(runtime.runs, runtime.runs.factory.registry, runtime.data_dir).tick(10.0) == []
    client.put_object(Bucket=bucket, Key="in/a.csv", Body=b"v2 changed")
    [second] = poller.tick(15.0)
    assert returned(runtime, second) == "1 v2 changed in/a.csv"
    assert keys(s3, bucket) == ["in/a.csv"]


def test_wrong_credentials_are_logged_masked_and_fire_nothing(
    runtime: Runtime, s3: S3Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = f"gitsync-{uuid.uuid4().hex[:12]}"
    s3.bucket(bucket).put_object(Bucket=bucket, Key="in/a.csv", Body=b"a")
    runtime.deploy({"landing.yaml": trigger_flow(s3, bucket).replace("secret('AWS_KEY')", "secret('OTHER_KEY')")})
    monkeypatch.setenv("SECRET_OTHER_KEY", base64.b64encode(b"AKIAOTHERKEY00000000").decode())
    poller = Poller(runtime.runs, runtime.runs.factory.registry, runtime.data_dir)
    with caplog.at_level("WARNING", logger="gitsync.triggers"):
        assert poller.tick(0.0) == []
    text = caplog.text
    assert "trigger acme.aws.landing/watch could not poll" in text and "InvalidAccessKeyId" in text
    assert "AKIAOTHERKEY00000000" not in text
    assert keys(s3, bucket) == ["in/a.csv"]


def test_a_daemon_fires_once_across_a_restart(tmp_path: Path, s3: S3Server, secrets: dict[str, str]) -> None:
    bucket = f"gitsync-{uuid.uuid4().hex[:12]}"
    client = s3.bucket(bucket)
    repo = GitRepo(tmp_path / "work")
    repo.commit({"flows/landing.yaml": trigger_flow(s3, bucket, action="NONE")})
    source = {"name": "main", "repo": str(repo.path), "branch": "main", "path": "flows", "poll": "1h"}
    client.put_object(Bucket=bucket, Key="in/a.csv", Body=b"first")

    def ended() -> list[dict[str, Any]]:
        return daemon.query("SELECT id, state, trigger_kind FROM executions WHERE ended_at IS NOT NULL ORDER BY id")

    with running_daemon(tmp_path / "daemon", [source], env=secrets) as daemon:
        daemon.wait_for(lambda: len(ended()) == 1, "the object to fire one execution")
        client.put_object(Bucket=bucket, Key="in/b.csv", Body=b"second")
        daemon.wait_for(lambda: len(ended()) == 2, "the second object to fire another")
    with running_daemon(tmp_path / "daemon", [source], env=secrets) as daemon:
        client.put_object(Bucket=bucket, Key="in/c.csv", Body=b"third")
        daemon.wait_for(lambda: len(ended()) == 3, "the third object, after the restart")
        runs = ended()
        assert [r["state"] for r in runs] == ["SUCCESS"] * 3 and {r["trigger_kind"] for r in runs} == {"poll"}
        values = [r["outputs"] for r in daemon.query("SELECT outputs FROM task_runs ORDER BY started_at")]
        assert [json.loads(v)["value"] for v in values] == ["1 first in/a.csv", "1 second in/b.csv", "1 third in/c.csv"]
        fired = daemon.query("SELECT item, execution_id FROM trigger_polls ORDER BY item")
        assert [f["item"] for f in fired] == [f"s3://{bucket}/in/{n}.csv" for n in "abc"]


def test_when_refuses_until_it_holds(runtime: Runtime, s3: S3Server) -> None:
    bucket = f"gitsync-{uuid.uuid4().hex[:12]}"
    client = s3.bucket(bucket)
    client.put_object(Bucket=bucket, Key="in/a.csv", Body=b"a")
    source = trigger_flow(s3, bucket, action="DELETE") + '    when: "{{ trigger.objects | length >= 2 }}"\n'
    runtime.deploy({"landing.yaml": source})
    poller = Poller(runtime.runs, runtime.runs.factory.registry, runtime.data_dir)
    assert poller.tick(0.0) == []  # one object: `when` refuses, nothing recorded or deleted
    assert keys(s3, bucket) == ["in/a.csv"]
    client.put_object(Bucket=bucket, Key="in/b.csv", Body=b"b")
    [fired] = poller.tick(1.0)
    assert returned(runtime, fired) == "2 a in/a.csv"
    assert keys(s3, bucket) == []
