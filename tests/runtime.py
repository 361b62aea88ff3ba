"""A real runtime for tests: flows committed to a git repository, synced into SQLite, run by a RunManager."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import sysconfig
import textwrap
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import installed
from gitservers import GitRepo

from gitsync.compose import build_runs
from gitsync.config import SourceConfig, load_settings
from gitsync.state.database import Store, loads
from gitsync.sync.apply import sync_source


class Runtime:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.repo = GitRepo(tmp / "repo")
        self.store = Store(tmp / "state.db")
        self.data_dir = tmp / "data"
        settings = load_settings(None, {"db": str(tmp / "state.db"), "data_dir": str(self.data_dir)})
        self.runs = build_runs(self.store, settings, installed.registry(), status_sources=None)
        self.source = SourceConfig(name="test", repo=str(tmp / "repo"), branch="main", path="flows")

    def deploy(self, files: dict[str, str | None]) -> None:
        """Commit flows (name -> YAML, dedented) and sync them; fails the test if the sync does not apply."""
        self.repo.commit({f"flows/{k}": textwrap.dedent(v) if v else None for k, v in files.items()})
        result = sync_source(self.store, self.source, self.data_dir, installed.registry())
        assert result.outcome == "applied", result.errors

    def run(self, uid: str, **inputs: Any) -> dict[str, Any]:
        execution_id = self.runs.create(uid, inputs)
        self.runs.run(execution_id)
        return self.execution(execution_id)

    def execution(self, execution_id: str) -> dict[str, Any]:
        row = self.store.query_one("SELECT * FROM executions WHERE id = ?", (execution_id,))
        assert row is not None
        row["outputs"] = loads(row["outputs"]) or {}
        row["labels"] = loads(row["labels"]) or {}
        row["task_runs"] = self.store.query(
            "SELECT * FROM task_runs WHERE execution_id = ? ORDER BY started_at, id", (execution_id,)
        )
        for run in row["task_runs"]:
            run["outputs"] = loads(run["outputs"]) or {}
        row["logs"] = [
            r["message"]
            for r in self.store.query("SELECT message FROM logs WHERE execution_id = ? ORDER BY id", (execution_id,))
        ]
        return row

    def states(self, execution: dict[str, Any]) -> dict[str, str]:
        """task id (with [value] inside loops) -> state of its last attempt."""
        out: dict[str, str] = {}
        for run in execution["task_runs"]:
            key = run["task_id"] + (f"[{run['value']}]" if run["value"] is not None else "")
            out[key] = run["state"]
        return out

    def close(self) -> None:
        self.runs.shutdown()
        self.store.close()


def deployed_state(tmp_path: Path, flows: dict[str, str | None]) -> tuple[str, str]:
    """A state database and data folder holding `flows`, synced from a real repository (for CLI tests)."""
    runtime = Runtime(tmp_path)
    runtime.deploy(flows)
    runtime.close()
    return str(tmp_path / "state.db"), str(tmp_path / "data")


def gitsync_cli(
    state: tuple[str, str], *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`gitsync ARGS --db DB --data-dir DATA` as a real process."""
    db, data = state
    return subprocess.run(
        [sys.executable, "-m", "gitsync", *args, "--db", db, "--data-dir", data],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else dict(env),
    )


def python_without_extras(tmp: Path) -> Path:
    """A Python that runs this checkout's gitsync (the test environment's packages) but whose bin folder holds no
    console script: what `pip install -e .` without extras gives a new user, so no `dbt` command. Run it with a
    PATH that does not name the test environment's bin folder."""
    home = tmp / "python-without-extras"
    if not home.exists():
        subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(home)], check=True)
        site = subprocess.run(
            [str(home / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        ours = sysconfig.get_paths()["purelib"]
        Path(site, "gitsync-tests.pth").write_text(f"import site; site.addsitedir({ours!r})\n", encoding="utf-8")
    return home / "bin" / "python"


def python_hiding(tmp: Path, modules: list[str]) -> Path:
    """A Python that runs this checkout's gitsync with the test environment's packages, except `modules`, which
    cannot be imported: what `pip install gitsync` gives without the extra that brings them."""
    home = tmp / ("python-hiding-" + "-".join(sorted(modules)))
    if not home.exists():
        subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(home)], check=True)
        site = subprocess.run(
            [str(home / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        ours = sysconfig.get_paths()["purelib"]
        hidden = ", ".join(repr(name) for name in sorted(modules))
        Path(site, "gitsync-tests.pth").write_text(
            f"import site, sys; site.addsitedir({ours!r}); sys.modules.update(dict.fromkeys([{hidden}]))\n",
            encoding="utf-8",
        )
    return home / "bin" / "python"


def run_outputs(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The flow outputs `gitsync run` printed (`outputs: {...}` at the end)."""
    marker = done.stdout.find("\noutputs: ")
    assert marker >= 0, done.stdout + done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout[marker + len("\noutputs: ") :])
    return parsed


def stored_file(state: tuple[str, str], uri: str) -> Path:
    """The file that a kestra:/// URI names in the data folder of `state` (where `gitsync run` stored it)."""
    parts = uri.removeprefix("kestra:///").split("/")
    where = parts.index("executions")
    return Path(state[1], "executions", *parts[where + 1 :])


_LINES: dict[int, queue.Queue[str | None]] = {}


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 20.0) -> str:
    """The process's next output lines, up to the first one holding `marker` (a reader thread: select() and text
    buffers don't mix). Fails when the output ends or `timeout` passes first, with what was read."""
    if proc.pid not in _LINES:
        _LINES[proc.pid] = _start_reader(proc)
    lines = _LINES[proc.pid]
    out: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            lines.put(None)  # the end stays the end for the next call
            raise AssertionError(f"the output ended before {marker!r}; got: {''.join(out)!r}")
        out.append(line)
        if marker in line:
            return "".join(out)
    raise AssertionError(f"no {marker!r} within {timeout}s; got: {''.join(out)!r}")


def _start_reader(proc: subprocess.Popen[str]) -> queue.Queue[str | None]:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines
