"""`gitsync validate` as a user runs it: real files, real process, exit codes of DESIGN.md."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runtime import read_until

from gitsync.cli.main import main

VALID = """\
id: hello
namespace: acme.demo
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: hello
"""

INVALID = """\
id: broken
namespace: acme.demo
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    mesage: hello
  - id: run
    type: io.kestra.plugin.scripts.shell.Comands
    commands: [echo hi]
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "hello.yaml").write_text(VALID)
    (tmp_path / "flows" / "broken.yml").write_text(INVALID)
    return tmp_path / "flows"


def test_valid_file_exits_zero(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(flows / "hello.yaml")]) == 0
    assert "1 file(s): 1 valid, 0 invalid" in capsys.readouterr().out


def test_invalid_folder_exits_one_with_every_error_located(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(flows)]) == 1
    out = capsys.readouterr().out
    broken = str(flows / "broken.yml")
    assert f"{broken}:6:5: flow 'acme.demo.broken': tasks[0].mesage: unknown property 'mesage'" in out
    assert "did you mean 'message'?" in out
    assert f"{broken}:8:5: flow 'acme.demo.broken': tasks[1].type: unknown task type" in out
    assert "did you mean io.kestra.plugin.scripts.shell.Commands" in out
    assert "2 file(s): 1 valid, 1 invalid; 2 error(s)" in out


def test_json_format_lists_errors_with_file_line_column(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", str(flows)]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["valid"] is False
    by_path = {f["path"]: f for f in document["files"]}
    assert by_path[str(flows / "hello.yaml")]["valid"] is True
    assert by_path[str(flows / "hello.yaml")]["flow"] == "acme.demo.hello"
    errors = document["errors"]
    assert [(e["file"], e["line"], e["column"]) for e in errors] == [
        (str(flows / "broken.yml"), 6, 5),
        (str(flows / "broken.yml"), 8, 5),
    ]


def test_github_format_prints_workflow_annotations(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "github", str(flows / "broken.yml")]) == 1
    lines = capsys.readouterr().out.splitlines()
    annotations = [line for line in lines if line.startswith("::error ")]
    assert len(annotations) == 2
    path = str(flows / "broken.yml").replace(":", "%3A")
    assert annotations[0].startswith(f"::error file={path},line=6,col=5,title=gitsync%3A acme.demo.broken::")
    assert annotations[0].endswith(
        "tasks[0].mesage: unknown property 'mesage' (did you mean 'message'?) for io.kestra.plugin.core.log.Log"
    )


def test_usage_error_exits_two(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--format", "xml"])
    assert exc.value.code == 2


def test_missing_path_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope")]) == 1
    assert "no such file or folder" in capsys.readouterr().out


def test_watch_revalidates_on_save(flows: Path) -> None:
    target = flows / "hello.yaml"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitsync", "validate", "--watch", str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = read_until(proc, "file(s):")
        assert "1 valid, 0 invalid" in first
        time.sleep(0.3)  # let the watcher settle before the edit
        target.write_text(VALID.replace("namespace: acme.demo", "namespace: Acme"))
        second = read_until(proc, "file(s):")
        assert "change detected" in second
        assert f"{target}:2:1: flow 'Acme.hello': namespace:" in second
        assert "0 valid, 1 invalid" in second
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_watch_says_what_it_watches_and_how_to_stop_and_stops_quietly_on_ctrl_c(flows: Path, tmp_path: Path) -> None:
    other = tmp_path / "more.yaml"
    other.write_text(VALID.replace("id: hello", "id: more"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitsync", "validate", "--watch", str(flows), str(other)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        said = read_until(proc, "watching")
        assert "3 file(s): 2 valid, 1 invalid" in said  # the first validation comes first
        watching = said.splitlines()[-1]
        assert watching == (
            f"watching {flows}, {other} for changes to flow files (.yaml, .yml); press Ctrl-C to stop"
        ), watching
        proc.send_signal(signal.SIGINT)
        rest = read_until(proc, "stopped watching")  # its reader thread owns stdout: communicate() would race it
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1  # the last validation's exit code: broken.yml is invalid
    assert rest.strip() == "stopped watching", rest
