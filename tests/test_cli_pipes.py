"""The command line as a Unix tool: a closed pipe ends it quietly, `--version` answers, bad choices are usage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GITSYNC = [sys.executable, "-m", "gitsync"]


@pytest.mark.parametrize("command", [["schema"], ["flows", "--db", "{db}"], ["executions", "--db", "{db}"]])
def test_a_reader_that_closes_the_pipe_ends_the_command_quietly(tmp_path: Path, command: list[str]) -> None:
    """`gitsync … | head -0`: the reader is gone before the command writes; no traceback, exit 141 (SIGPIPE)."""
    args = [part.format(db=tmp_path / "state.db") for part in command]
    subprocess.run(
        [*GITSYNC, "sync", "--db", str(tmp_path / "state.db"), "--repo", str(tmp_path / "none")], capture_output=True
    )  # leaves a state database (the sync itself fails: there is no repository)
    proc = subprocess.Popen([*GITSYNC, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `head` exiting before the first line
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert code == 141, err


def test_version() -> None:
    result = subprocess.run([*GITSYNC, "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("gitsync ")


def test_an_unknown_state_is_a_usage_error_listing_the_states(tmp_path: Path) -> None:
    result = subprocess.run(
        [*GITSYNC, "executions", "--db", str(tmp_path / "s.db"), "--state", "BOGUS"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "invalid choice: 'BOGUS'" in result.stderr and "SUCCESS" in result.stderr


FLOW = "id: {id}\nnamespace: acme\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n    format: hi\n"


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GITSYNC, "run", "--db", str(tmp_path / "state.db"), *args], capture_output=True, text=True)


def test_run_without_a_flow_is_a_usage_error_that_touches_nothing(tmp_path: Path) -> None:
    done = run(tmp_path)
    assert done.returncode == 2 and "give a flow (NS.ID) or --file FLOW.yaml" in done.stderr
    assert not (tmp_path / "state.db").exists()


def test_a_malformed_input_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(FLOW.format(id="one"))
    done = run(tmp_path, "--file", str(tmp_path / "one.yaml"), "--input", "no-equals-sign")
    assert done.returncode == 2 and "--input takes KEY=VALUE, got 'no-equals-sign'" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "state.db").exists()


def test_run_file_of_a_folder_runs_its_one_flow_and_refuses_several(tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "one.yaml").write_text(FLOW.format(id="one"))
    done = run(tmp_path, "--file", str(folder))
    assert done.returncode == 0 and "acme.one" in done.stdout and "SUCCESS" in done.stdout, done.stderr
    (folder / "two.yaml").write_text(FLOW.format(id="two"))
    done = run(tmp_path, "--file", str(folder))
    assert done.returncode == 2
    assert "holds 2 flow files; give one of them to --file" in done.stderr
    assert "one.yaml" in done.stderr and "two.yaml" in done.stderr
