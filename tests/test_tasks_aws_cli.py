"""AwsCLI (io.kestra.plugin.aws.cli.AwsCLI): the `aws` command of PyPI's awscli, run as a script task with the
task's credentials, region and endpoint as AWS_* variables, against moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime import Runtime
from s3_server import REGION, S3Server

CLI = "io.kestra.plugin.aws.cli.AwsCLI"


@pytest.fixture
def runtime(tmp_path: Path, s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("SECRET_AWS_KEY", base64.b64encode(s3.key.encode()).decode())
    monkeypatch.setenv("SECRET_AWS_SECRET", base64.b64encode(s3.secret.encode()).decode())
    rt = Runtime(tmp_path)
    yield rt
    rt.close()


def cli_flow(flow_id: str, s3: S3Server, body: str) -> str:
    return (
        f"id: {flow_id}\nnamespace: acme.aws\ntasks:\n  - id: cli\n    type: {CLI}\n"
        f"    endpointOverride: {s3.endpoint}\n    region: {REGION}\n    containerImage: amazon/aws-cli\n"
        "    accessKeyId: \"{{ secret('AWS_KEY') }}\"\n    secretKeyId: \"{{ secret('AWS_SECRET') }}\"\n" + body
    )


def run(runtime: Runtime, flow_id: str, s3: S3Server, body: str) -> dict[str, Any]:
    runtime.deploy({f"{flow_id}.yaml": cli_flow(flow_id, s3, body)})
    return runtime.run(f"acme.aws.{flow_id}")


def test_aws_commands_reach_the_endpoint_with_the_tasks_credentials(runtime: Runtime, s3: S3Server) -> None:
    name = f"gitsync-{uuid.uuid4().hex[:12]}"
    s3.bucket(name).put_object(Bucket=name, Key="seed/readme.txt", Body=b"seeded")
    body = (
        "    inputFiles:\n      report.csv: |\n        id,total\n        1,10\n"
        "    outputFiles:\n      - listing.json\n      - back.txt\n"
        "    commands:\n"
        f"      - aws s3 cp report.csv s3://{name}/reports/report.csv\n"
        f"      - aws s3api list-objects-v2 --bucket {name} > listing.json\n"
        f"      - aws s3 cp s3://{name}/seed/readme.txt back.txt\n"
        "      - echo \"region=$AWS_DEFAULT_REGION output=$AWS_DEFAULT_OUTPUT secret=$AWS_SECRET_ACCESS_KEY\"\n"
    )  # fmt: skip
    execution = run(runtime, "cli", s3, body)
    assert execution["state"] in ("SUCCESS", "WARNING"), execution["logs"]
    uploaded = s3.client().get_object(Bucket=name, Key="reports/report.csv")["Body"].read()
    assert uploaded == b"id,total\n1,10\n"
    [cli] = execution["task_runs"]
    files = cli["outputs"]["outputFiles"]
    listing = json.loads(_stored(runtime, files["listing.json"]))
    assert sorted(o["Key"] for o in listing["Contents"]) == ["reports/report.csv", "seed/readme.txt"]
    assert _stored(runtime, files["back.txt"]) == b"seeded"
    text = "\n".join(execution["logs"])
    assert f"region={REGION} output=json secret=******" in text
    assert s3.secret not in text


def test_wrong_credentials_fail_with_the_cli_s_reason(
    runtime: Runtime, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_AWS_SECRET", base64.b64encode(b"wrong-secret-wrong-secret").decode())
    execution = run(runtime, "wrong", s3, "    commands:\n      - aws s3 ls\n")
    assert execution["state"] == "FAILED"
    text = "\n".join(execution["logs"])
    assert "SignatureDoesNotMatch" in text
    assert "wrong-secret-wrong-secret" not in text


def test_output_format_and_env_reach_the_command(runtime: Runtime, s3: S3Server) -> None:
    body = (
        "    outputFormat: TEXT\n    env:\n      GREETING: hello\n"
        "    commands:\n      - echo \"$AWS_DEFAULT_OUTPUT $GREETING $AWS_ENDPOINT_URL\"\n"
        "      - aws s3api list-buckets --query 'length(Buckets) >= `0`'\n"
    )  # fmt: skip
    execution = run(runtime, "fmt", s3, body)
    assert execution["state"] in ("SUCCESS", "WARNING"), execution["logs"]
    text = "\n".join(execution["logs"])
    assert f"text hello {s3.endpoint}" in text
    assert "True" in text  # TEXT output of the query, not JSON's `true`


def _stored(runtime: Runtime, uri: str) -> bytes:
    parts = uri.removeprefix("kestra:///").split("/")
    return Path(runtime.data_dir, "executions", *parts[parts.index("executions") + 1 :]).read_bytes()
