"""FILE inputs (issue 11, point 17): the file is uploaded into the execution's storage and the input's value is its
kestra:/// URI, as Kestra does. `gitsync run --input name=@path` uploads a local file; the API's run route takes
multipart form data (text fields for the other inputs, a file part for each FILE input), as Kestra's does."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from daemon_harness import running_daemon
from gitservers import GitRepo
from http_attack import AUTH, RssWatch, connect, http_daemon, read_response, request_head, stream_body
from runtime import deployed_state, gitsync_cli

API_TOKEN = "api-token-for-file-input-tests"

FLOW = """
    id: upload
    namespace: company.team
    inputs:
      - id: data
        type: FILE
      - id: rows
        type: INT
        defaults: 0
    tasks:
      - id: uri
        type: io.kestra.plugin.core.log.Log
        message: "uri {{ inputs.data }}"
      - id: read
        type: io.kestra.plugin.core.log.Log
        message: "read {{ read(inputs.data) | trim }} rows={{ inputs.rows }}"
      - id: shell
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - echo "shell $(cat {{ inputs.data }})"
"""
URI = re.compile(r"uri (kestra:///company/team/upload/executions/(\w+)/inputs/data/([\w.-]+))")


def test_run_uploads_a_local_file_for_a_file_input(tmp_path: Path) -> None:
    state = deployed_state(tmp_path, {"upload.yml": FLOW})
    local = tmp_path / "orders.csv"
    local.write_text("id,total\n", encoding="utf-8")
    done = gitsync_cli(state, "run", "company.team.upload", "--input", f"data=@{local}", "--input", "rows=3")
    assert done.returncode == 0, done.stdout + done.stderr
    found = URI.search(done.stdout)
    assert found is not None, done.stdout
    assert found.group(3) == "orders.csv" and found.group(2) in done.stdout.splitlines()[0]
    assert "read id,total rows=3" in done.stdout
    assert "shell id,total" in done.stdout


def test_run_with_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    state = deployed_state(tmp_path, {"upload.yml": FLOW})
    done = gitsync_cli(state, "run", "company.team.upload", "--input", f"data=@{tmp_path / 'absent.csv'}")
    assert done.returncode == 2
    assert "absent.csv" in done.stderr and "no such file" in done.stderr
    listed = gitsync_cli(state, "executions", "--format", "json")
    assert listed.stdout.strip() == "[]"


def test_a_file_for_an_input_that_is_not_a_file_is_refused(tmp_path: Path) -> None:
    state = deployed_state(tmp_path, {"upload.yml": FLOW})
    local = tmp_path / "three.txt"
    local.write_text("3", encoding="utf-8")
    done = gitsync_cli(state, "run", "company.team.upload", "--input", f"data=@{local}", "--input", f"rows=@{local}")
    assert done.returncode == 1
    assert "input 'rows' (INT)" in done.stderr and "only a FILE input takes a file" in done.stderr
    plain = gitsync_cli(state, "run", "company.team.upload", "--input", "data=orders.csv")
    assert plain.returncode == 1
    assert "input 'data' (FILE)" in plain.stderr and "data=@orders.csv" in plain.stderr


def test_the_api_takes_multipart_form_data(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"flows/upload.yml": textwrap.dedent(FLOW)})
    source = {"name": "main", "repo": str(repo.path), "branch": "main", "path": "flows", "poll": "1h"}
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    with running_daemon(tmp_path / "daemon", [source], env={"GITSYNC_API_TOKEN": API_TOKEN}) as daemon:
        daemon.wait_for(lambda: "company.team.upload" in daemon.flow_uids(), "the flow is applied")
        answer = daemon.post(
            "/api/v1/executions/company.team/upload",
            files={"data": ("../../weird name.csv", b"id,total\n", "text/csv")},
            data={"rows": "4"},
            headers=auth,
        )
        assert answer.status_code == 201, answer.text
        execution_id = answer.json()["id"]

        def ended() -> str | None:
            rows = daemon.query("SELECT state FROM executions WHERE id = ?", (execution_id,))
            return rows[0]["state"] if rows and rows[0]["state"] in ("SUCCESS", "FAILED", "WARNING") else None

        assert daemon.wait_for(ended, "the execution ends", 90) == "SUCCESS"
        logs = "\n".join(
            r["message"] for r in daemon.query("SELECT message FROM logs WHERE execution_id = ?", (execution_id,))
        )
        found = URI.search(logs)
        assert found is not None and found.group(2) == execution_id and found.group(3) == "weird_name.csv", logs
        assert "read id,total rows=4" in logs and "shell id,total" in logs
        wrong = daemon.post(
            "/api/v1/executions/company.team/upload",
            files={"rows": ("n.txt", b"4", "text/plain")},
            headers=auth,
        )
        assert wrong.status_code == 422 and "only a FILE input takes a file" in wrong.json()["detail"]


def test_a_multipart_body_over_the_upload_bound_is_refused_while_it_streams(tmp_path: Path) -> None:
    """The bound holds without Content-Length too (chunked): the daemon stops reading past it and answers 413."""
    mb = 1024 * 1024
    boundary = "gitsyncboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="data"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    chunk = b"x" * mb
    with http_daemon(tmp_path) as daemon, RssWatch(daemon.pid) as rss, connect(daemon.port) as sock:
        headers = {**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}", "Transfer-Encoding": "chunked"}
        sock.sendall(request_head("POST", "/api/v1/executions/acme.demo/hook", daemon.port, headers))
        sock.sendall(f"{len(head):x}\r\n".encode() + head + b"\r\n")
        sent = stream_body(sock, 400 * mb, f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        status, data = read_response(sock)
    assert status == 413 and b"request body over" in data, data
    assert sent < 200 * mb, f"the daemon read {sent} bytes before refusing"
    assert rss.growth_mb < 50, f"RSS grew by {rss.growth_mb:.0f} MB"
