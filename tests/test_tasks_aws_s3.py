"""The S3 tasks (io.kestra.plugin.aws.s3.*) in real flows against moto's S3 server on 127.0.0.1 (tests/s3_server.py),
reached through `endpointOverride` with credentials given as secrets; what they did is read back with boto3."""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime import Runtime, python_hiding
from s3_server import REGION, S3Server

S3 = "io.kestra.plugin.aws.s3"


@pytest.fixture
def runtime(tmp_path: Path, s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("SECRET_AWS_KEY", base64.b64encode(s3.key.encode()).decode())
    monkeypatch.setenv("SECRET_AWS_SECRET", base64.b64encode(s3.secret.encode()).decode())
    monkeypatch.setenv("SECRET_WRONG_SECRET", base64.b64encode(b"not-the-secret-0123456789").decode())
    rt = Runtime(tmp_path)
    yield rt
    rt.close()


def bucket_name() -> str:
    return f"gitsync-{uuid.uuid4().hex[:12]}"


def conn(s3: S3Server, secret: str = "AWS_SECRET") -> str:
    return (
        f"    endpointOverride: {s3.endpoint}\n    region: {REGION}\n"
        f"    accessKeyId: \"{{{{ secret('AWS_KEY') }}}}\"\n    secretKeyId: \"{{{{ secret('{secret}') }}}}\"\n"
    )


def task(s3: S3Server, task_id: str, kind: str, body: str, secret: str = "AWS_SECRET") -> str:
    return f"  - id: {task_id}\n    type: {S3}.{kind}\n{conn(s3, secret)}{body}"


def flow(flow_id: str, *tasks: str) -> str:
    return f"id: {flow_id}\nnamespace: acme.aws\ntasks:\n" + "".join(tasks)


def run(runtime: Runtime, flow_id: str, *tasks: str) -> dict[str, Any]:
    runtime.deploy({f"{flow_id}.yaml": flow(flow_id, *tasks)})
    return runtime.run(f"acme.aws.{flow_id}")


def outputs(execution: dict[str, Any]) -> dict[str, Any]:
    return {r["task_id"]: r["outputs"] for r in execution["task_runs"]}


def stored(runtime: Runtime, uri: str) -> bytes:
    parts = uri.removeprefix("kestra:///").split("/")
    return Path(runtime.data_dir, "executions", *parts[parts.index("executions") + 1 :]).read_bytes()


def write(task_id: str, content: str, extension: str = ".csv") -> str:
    return (f"  - id: {task_id}\n    type: io.kestra.plugin.core.storage.Write\n    content: \"{content}\"\n"
            f"    extension: {extension}\n")  # fmt: skip


def test_create_upload_list_download_copy_delete(runtime: Runtime, s3: S3Server) -> None:
    name = bucket_name()
    execution = run(
        runtime, "roundtrip",
        task(s3, "bucket", "CreateBucket", f"    bucket: {name}\n"),
        write("data", "id,name\\n1,Zoë\\n"),
        task(s3, "up", "Upload", f"    bucket: {name}\n    from: \"{{{{ outputs.data.uri }}}}\"\n"
             "    key: in/2024/orders.csv\n    contentType: text/csv\n    metadata:\n      source: gitsync\n"),
        task(s3, "ls", "List", f"    bucket: {name}\n    prefix: in/\n"),
        task(s3, "get", "Download", f"    bucket: {name}\n    key: in/2024/orders.csv\n"),
        task(s3, "cp", "Copy", f"    from:\n      bucket: {name}\n      key: in/2024/orders.csv\n"
             f"    to:\n      bucket: {name}\n      key: archive/orders.csv\n"),
        task(s3, "rm", "Delete", f"    bucket: {name}\n    key: in/2024/orders.csv\n"),
    )  # fmt: skip
    assert execution["state"] == "SUCCESS", execution["logs"]
    out = outputs(execution)
    assert out["bucket"] == {"bucket": name, "region": f"/{name}"}
    etag = s3.client().head_object(Bucket=name, Key="archive/orders.csv")["ETag"]
    assert out["up"]["bucket"] == name and out["up"]["key"] == "in/2024/orders.csv" and out["up"]["eTag"] == etag
    [listed] = out["ls"]["objects"]
    assert listed["key"] == "in/2024/orders.csv" and listed["size"] == len("id,name\n1,Zoë\n".encode())
    assert listed["etag"] == etag and listed["lastModified"].endswith("Z")
    assert stored(runtime, out["get"]["uri"]) == "id,name\n1,Zoë\n".encode()
    assert out["get"]["uri"].endswith("/orders.csv")
    assert out["get"]["contentType"] == "text/csv" and out["get"]["metadata"] == {"source": "gitsync"}
    assert out["get"]["eTag"] == etag and out["get"]["contentLength"] == listed["size"]
    assert out["cp"] == {"bucket": name, "key": "archive/orders.csv", "eTag": etag, "versionId": None}
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=name).get("Contents", [])]
    assert keys == ["archive/orders.csv"]


def test_many_files_regexp_downloads_move_and_delete_list(runtime: Runtime, s3: S3Server) -> None:
    name = bucket_name()
    client = s3.bucket(name)
    client.put_object(Bucket=name, Key="in/", Body=b"")  # a "directory" marker
    execution = run(
        runtime, "many",
        write("a", "1"), write("b", "22"), write("c", "333", ".txt"),
        task(s3, "list_up", "Upload", f"    bucket: {name}\n    key: in\n"
             "    from:\n      - \"{{ outputs.a.uri }}\"\n      - \"{{ outputs.b.uri }}\"\n"),
        task(s3, "map_up", "Upload", f"    bucket: {name}\n    key: in/named\n"
             "    from:\n      c.txt: \"{{ outputs.c.uri }}\"\n"),
        task(s3, "csvs", "List", f"    bucket: {name}\n    regexp: \"in/[ab]\\\\.csv\"\n"),
        task(s3, "dirs", "List", f"    bucket: {name}\n    filter: DIRECTORY\n"),
        task(s3, "most", "List", f"    bucket: {name}\n    filter: FILES\n    maxFiles: 2\n"),
        task(s3, "pick", "Download", f"    bucket: {name}\n    prefix: in/named/\n"),
        task(s3, "take", "Downloads", f"    bucket: {name}\n    regexp: \"in/[ab]\\\\.csv\"\n    action: MOVE\n"
             "    moveTo:\n      key: done/\n"),
        task(s3, "purge", "DeleteList", f"    bucket: {name}\n    prefix: in/\n"),
        task(s3, "again", "DeleteList", f"    bucket: {name}\n    prefix: in/\n    errorOnEmpty: true\n"),
    )  # fmt: skip
    out = outputs(execution)
    assert set(out["list_up"]["files"]) == {"a.csv", "b.csv"} and out["list_up"]["files"]["b.csv"]["contentLength"] == 2
    assert set(out["map_up"]["files"]) == {"c.txt"}
    assert [o["key"] for o in out["csvs"]["objects"]] == ["in/a.csv", "in/b.csv"]
    assert [o["key"] for o in out["dirs"]["objects"]] == ["in/"]
    assert len(out["most"]["objects"]) == 2
    assert any("maxFiles is 2" in line for line in execution["logs"])
    assert list(out["pick"]["files"]) == ["in/named/c.txt"]
    assert stored(runtime, out["pick"]["files"]["in/named/c.txt"]["uri"]) == b"333"
    assert [o["key"] for o in out["take"]["objects"]] == ["in/a.csv", "in/b.csv"]
    assert stored(runtime, out["take"]["outputFiles"]["in/b.csv"]) == b"22"
    assert out["purge"] == {"count": 2, "size": 3}  # in/ and in/named/c.txt; a and b were moved
    left = sorted(o["Key"] for o in client.list_objects_v2(Bucket=name).get("Contents", []))
    assert left == ["done/a.csv", "done/b.csv"]
    assert runtime.states(execution)["again"] == "FAILED"
    assert any(f"no object to delete in bucket '{name}'" in line for line in execution["logs"])


def test_wrong_secret_fails_in_words_and_never_shows_the_credentials(runtime: Runtime, s3: S3Server) -> None:
    name = bucket_name()
    s3.bucket(name)
    execution = run(runtime, "wrong", task(s3, "ls", "List", f"    bucket: {name}\n", secret="WRONG_SECRET"))
    assert execution["state"] == "FAILED"
    text = "\n".join(execution["logs"])
    assert f"AWS refused to list the objects of bucket '{name}': SignatureDoesNotMatch" in text
    assert "check secretKeyId: it does not belong to this accessKeyId" in text
    assert "not-the-secret-0123456789" not in text and s3.key not in text and "Traceback" not in text
    assert runtime.states(execution)["ls"] == "FAILED"


def test_unknown_key_id_and_unknown_bucket(runtime: Runtime, s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_AWS_KEY", base64.b64encode(b"AKIAUNKNOWN000000000").decode())
    execution = run(runtime, "nokey", task(s3, "ls", "List", "    bucket: whatever-bucket\n"))
    assert "InvalidAccessKeyId" in "\n".join(execution["logs"])
    assert "check accessKeyId" in "\n".join(execution["logs"])
    assert "AKIAUNKNOWN000000000" not in "\n".join(execution["logs"])
    monkeypatch.setenv("SECRET_AWS_KEY", base64.b64encode(s3.key.encode()).decode())
    execution = run(
        runtime, "nobucket", task(s3, "get", "Download", "    bucket: no-such-bucket-here\n    key: a.csv\n")
    )
    assert execution["state"] == "FAILED"
    text = "\n".join(execution["logs"])
    assert "AWS refused to download 'a.csv' from bucket 'no-such-bucket-here': NoSuchBucket" in text
    assert "check the bucket name" in text


def test_unreachable_endpoint_and_bad_regexp(runtime: Runtime, s3: S3Server) -> None:
    name = bucket_name()
    s3.bucket(name)
    bad = task(s3, "bad", "List", f'    bucket: {name}\n    regexp: "in/("\n')
    execution = run(runtime, "badre", bad)
    assert "regexp 'in/(' is not a valid regular expression" in "\n".join(execution["logs"])
    from services import free_port

    gone = task(s3, "gone", "List", f"    bucket: {name}\n").replace(s3.endpoint, f"http://127.0.0.1:{free_port()}")
    execution = run(runtime, "gone", gone)
    assert execution["state"] == "FAILED"
    assert any("does not answer" in line for line in execution["logs"])


def test_without_the_extra_the_run_names_the_pip_install(tmp_path: Path, s3: S3Server) -> None:
    source = tmp_path / "flow.yaml"
    source.write_text(flow("noextra", task(s3, "ls", "List", "    bucket: some-bucket\n")), encoding="utf-8")
    python = python_hiding(tmp_path, ["boto3", "botocore"])
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SECRET_AWS_KEY": "eA==", "SECRET_AWS_SECRET": "eA=="}
    checked = subprocess.run([str(python), "-m", "gitsync", "validate", str(source)], capture_output=True,
                             text=True, env=env, timeout=120)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    done = subprocess.run([str(python), "-m", "gitsync", "run", "--file", str(source)], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120)  # fmt: skip
    assert done.returncode == 1
    assert "pip install 'gitsync[aws]'" in done.stdout + done.stderr


def test_json_text_from_a_delete_action_and_copy_with_delete(runtime: Runtime, s3: S3Server) -> None:
    name = bucket_name()
    client = s3.bucket(name)
    execution = run(
        runtime, "json",
        write("a", "1"), write("b", "22"),
        task(s3, "up", "Upload", f"    bucket: {name}\n    key: in\n"
             "    from: '[\"{{ outputs.a.uri }}\", \"{{ outputs.b.uri }}\"]'\n"),
        task(s3, "named", "Upload", f"    bucket: {name}\n    key: named\n"
             "    from: '{\"first.csv\": \"{{ outputs.a.uri }}\"}'\n"),
        task(s3, "mv", "Copy", f"    delete: true\n    from:\n      bucket: {name}\n      key: named/first.csv\n"
             "    to:\n      key: moved/first.csv\n"),
        task(s3, "take", "Downloads", f"    bucket: {name}\n    prefix: in/\n    action: DELETE\n"),
    )  # fmt: skip
    assert execution["state"] == "SUCCESS", execution["logs"]
    out = outputs(execution)
    assert set(out["up"]["files"]) == {"a.csv", "b.csv"} and set(out["named"]["files"]) == {"first.csv"}
    assert out["mv"]["bucket"] == name and out["mv"]["key"] == "moved/first.csv"
    assert [o["key"] for o in out["take"]["objects"]] == ["in/a.csv", "in/b.csv"]
    assert sorted(o["Key"] for o in client.list_objects_v2(Bucket=name).get("Contents", [])) == ["moved/first.csv"]


def test_an_assumed_role_acts_for_the_task(runtime: Runtime, s3: S3Server) -> None:
    name = bucket_name()
    s3.bucket(name).put_object(Bucket=name, Key="k.txt", Body=b"x")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                     "Action": "sts:AssumeRole"}]}  # fmt: skip
    role = s3.client("iam").create_role(RoleName=f"reader-{name}", AssumeRolePolicyDocument=json.dumps(trust))
    arn = role["Role"]["Arn"]
    body = (f"    bucket: {name}\n    stsRoleArn: {arn}\n    stsRoleSessionName: nightly\n"
            f"    stsEndpointOverride: {s3.endpoint}\n    stsRoleSessionDuration: PT20M\n")  # fmt: skip
    execution = run(runtime, "role", task(s3, "ls", "List", body))
    assert execution["state"] == "FAILED"  # the role's credentials reached S3: the role may not read yet
    assert "AccessDenied" in "\n".join(execution["logs"])
    read = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    s3.client("iam").put_role_policy(RoleName=f"reader-{name}", PolicyName="read", PolicyDocument=json.dumps(read))
    execution = runtime.run("acme.aws.role")
    assert execution["state"] == "SUCCESS", execution["logs"]
    assert [o["key"] for o in outputs(execution)["ls"]["objects"]] == ["k.txt"]
