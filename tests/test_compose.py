"""The composition root: one place builds the parts from Settings, and the parts it builds share what they must."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import installed
import pytest
from gitservers import GitRepo, free_port

from gitsync.cli.main import main
from gitsync.compose import build_daemon, build_runs, open_store
from gitsync.config import Settings, load_settings
from gitsync.errors import ConfigError

HELLO = "id: hello\nnamespace: demo\ntasks:\n  - id: say\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    return load_settings(None, {"db": str(tmp_path / "state.db"), "data_dir": str(tmp_path / "data"), **overrides})


def test_the_daemon_gets_one_store_and_one_registry(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        {
            "db": str(tmp_path / "state.db"),
            "data_dir": str(tmp_path / "data"),
            "sources": [{"name": "local", "repo": str(tmp_path), "path": "flows"}],
        },
    )
    daemon = build_daemon(settings, installed.registry())
    try:
        assert daemon.runs.store is daemon.store and daemon.statuses.store is daemon.store
        assert daemon.pull_requests.store is daemon.store
        assert daemon.runs.registry is daemon.registry is installed.registry()
        assert daemon.pull_requests.registry is daemon.registry
        assert daemon.app is not None  # the HTTP app is built with the daemon's own callbacks
        # one masker per process, and the engine masks with that same one
        assert daemon.runs.engine.services.masker is daemon.runs.masker
        assert daemon.runs.data_dir.is_absolute()
    finally:
        daemon.runs.shutdown()
        daemon.store.close()


def test_a_celery_executor_without_its_broker_url_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITSYNC_BROKER_URL", raising=False)
    settings = settings_for(tmp_path, executor="celery")
    store = open_store(settings)
    try:
        with pytest.raises(ConfigError, match=r"executor: celery needs the broker's URL .* GITSYNC_BROKER_URL"):
            build_runs(store, settings, installed.registry())
    finally:
        store.close()


def test_the_command_line_says_so_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITSYNC_BROKER_URL", raising=False)
    flow = tmp_path / "hello.yaml"
    flow.write_text(HELLO)
    config = tmp_path / "gitsync.yaml"
    config.write_text(f"db: {tmp_path / 'state.db'}\ndata_dir: {tmp_path / 'data'}\nexecutor: celery\n")
    code = main(["run", "--config", str(config), "--file", str(flow)])
    err = capsys.readouterr().err
    assert code == 2
    assert "GITSYNC_BROKER_URL" in err and "redis://" in err
    assert "Traceback" not in err


def test_an_unknown_executor_is_a_config_error_naming_the_choices(tmp_path: Path) -> None:
    config = tmp_path / "gitsync.yaml"
    config.write_text("executor: kubernetes\n")
    result = subprocess.run(
        [sys.executable, "-m", "gitsync", "flows", "--config", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "executor" in result.stderr and "local" in result.stderr and "Traceback" not in result.stderr


# -- a data folder that cannot be written (issue 10, 4) ---------------------------------------------------------------

SetImmutable = Callable[[Sequence[Path], bool], None]


def _unwritable(tmp_path: Path, kind: str, request: pytest.FixtureRequest) -> Path:
    """A data folder root cannot write either: a path under a regular file, or an existing immutable folder."""
    if kind == "under a file":
        (tmp_path / "a-file").write_text("not a folder")
        return tmp_path / "a-file" / "data"
    immutable: SetImmutable = request.getfixturevalue("immutable")
    folder = tmp_path / "data"
    folder.mkdir()
    immutable([folder], True)
    return folder


@pytest.mark.parametrize("kind", ["under a file", "an immutable folder"])
@pytest.mark.parametrize("command", ["run", "sync", "daemon"])
def test_a_data_folder_that_cannot_be_written_is_said_and_exits_2(
    tmp_path: Path, command: str, kind: str, request: pytest.FixtureRequest
) -> None:
    data = _unwritable(tmp_path, kind, request)
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"flows/hello.yaml": HELLO})
    args = {
        "run": ["run", "--file", str(repo.path / "flows" / "hello.yaml")],
        "sync": ["sync", "--repo", str(repo.path), "--path", "flows"],
        "daemon": ["daemon", "--repo", str(repo.path), "--path", "flows", "--listen", f"127.0.0.1:{free_port()}"],
    }[command]
    result = subprocess.run(
        [sys.executable, "-m", "gitsync", *args, "--db", str(tmp_path / "state.db"), "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"gitsync {command}: data_dir {data} cannot be written ("), result.stderr
    assert result.stderr.rstrip().endswith(
        "it holds the git caches, the kv store and the execution files: "
        "set data_dir (--data-dir, GITSYNC_DATA_DIR) to a folder gitsync can write"
    ), result.stderr
    assert "Traceback" not in result.stderr


def test_a_celery_executor_without_the_extra_names_the_pip_install(tmp_path: Path) -> None:
    """Celery not importable (as in an install without `gitsync[celery]`): the run stops naming the extra."""
    code = (
        "import sys; sys.modules['celery'] = None\n"
        "from gitsync.cli.main import main\n"
        f"sys.exit(main(['run', '--db', {str(tmp_path / 's.db')!r}, '--data-dir', {str(tmp_path / 'd')!r}, "
        f"'--file', {str(tmp_path / 'hello.yaml')!r}]))\n"
    )
    (tmp_path / "hello.yaml").write_text(HELLO)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITSYNC_")}
    env.update(GITSYNC_EXECUTOR="celery", GITSYNC_BROKER_URL="redis://127.0.0.1:1/0")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "pip install 'gitsync[celery]'" in done.stderr and "Traceback" not in done.stderr
