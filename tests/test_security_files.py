"""Issue 9, class 7: files a task or its container can point at.

A task (or the container of the Docker runner, which writes into the mounted task folder) may leave symbolic
links there. Reading the folder back (outputFiles of script tasks, of WorkingDirectory, of DuckDB, the
deprecated Bash and LocalFiles) must never follow a link out of the folder: such a file is refused and the
task fails with the reason. The attacks run as real shell tasks through `gitsync run --file` (a real
subprocess), and every byte under the data dir and in the SQLite file is searched for /etc/passwd's content.

The Docker runner must not put the task's env values on the `docker run` command line, where `ps` shows
them. There is no Docker engine on this machine, so those tests check the argv and environment the runner
builds, and run a stand-in `docker` executable (a shell script recording what it was given) as a real process.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from taskctx import make_context

from plugins.scripts.execution import Scratch, ScriptSpec, _command, docker_env, execute
from runner.api import TaskFailed
from runner.storage import LocalStorage

PASSWD = Path("/etc/passwd")
REFUSED = "points outside the task's working directory"


def _passwd_needles() -> list[bytes]:
    content = PASSWD.read_bytes()
    first = content.splitlines()[0]
    return [content, first]


def _every_byte(root: Path) -> list[tuple[Path, bytes]]:
    """Every regular file under `root`, read without following any link (links are what the attack plants)."""
    found = []
    for folder, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            path = Path(folder, name)
            if path.is_symlink():
                continue
            found.append((path, path.read_bytes()))
    return found


def run_file(tmp_path: Path, flow: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "flow.yaml"
    path.write_text(textwrap.dedent(flow))
    state = ["--db", str(tmp_path / "state.db"), "--data-dir", str(tmp_path / "data")]
    return subprocess.run(
        [sys.executable, "-m", "gitsync", "run", "--file", str(path), *state],
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_no_passwd(tmp_path: Path) -> None:
    needles = _passwd_needles()
    files = _every_byte(tmp_path / "data") + [(p, p.read_bytes()) for p in tmp_path.glob("state.db*")]
    assert files
    for path, data in files:
        for needle in needles:
            assert needle not in data, f"/etc/passwd content reached {path}"


SHELL = """
          - id: {id}
            type: io.kestra.plugin.scripts.shell.Commands
            taskRunner:
              type: io.kestra.plugin.core.runner.Process
            outputFiles: {outputs}
            commands:
              - {command}
"""


def shell_flow(command: str, outputs: str) -> str:
    return "id: leak\nnamespace: acme\ntasks:" + SHELL.format(id="t", command=command, outputs=outputs)


def assert_refused(tmp_path: Path, flow: str) -> None:
    """The run fails, saying the link is refused, and /etc/passwd's content is nowhere under the state."""
    done = run_file(tmp_path, flow)
    assert done.returncode == 1, done.stdout + done.stderr
    assert REFUSED in done.stdout
    assert_no_passwd(tmp_path)


@pytest.mark.parametrize(
    ("command", "outputs"),
    [
        ("ln -s /etc/passwd leak.txt", '["leak.txt"]'),
        ("ln -s /etc etc", '["etc/passwd"]'),
        ("mkdir out && ln -s /etc/passwd out/leak.txt", '["out/*"]'),
        ("ln -s /etc/passwd a && ln -s a b", '["b"]'),
    ],
    ids=["file-link", "linked-folder", "glob", "link-chain"],
)
def test_a_link_out_of_the_folder_fails_the_shell_task(tmp_path: Path, command: str, outputs: str) -> None:
    done = run_file(tmp_path, shell_flow(command, outputs))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED" in done.stdout and REFUSED in done.stdout, done.stdout
    assert_no_passwd(tmp_path)


def test_a_recursive_glob_does_not_descend_into_a_linked_folder(tmp_path: Path) -> None:
    """`**` does not enter a linked folder (nothing matches, nothing is read); were it to, the file is refused."""
    done = run_file(tmp_path, shell_flow("mkdir out && ln -s /etc out/etc", '["**/passwd"]'))
    assert done.returncode == 0 or REFUSED in done.stdout, done.stdout + done.stderr
    assert_no_passwd(tmp_path)


def test_a_link_inside_the_folder_is_followed(tmp_path: Path) -> None:
    done = run_file(tmp_path, shell_flow("echo inside > real.txt && ln -s real.txt alias.txt", '["alias.txt"]'))
    assert done.returncode == 0, done.stdout + done.stderr
    stored = [data for path, data in _every_byte(tmp_path / "data") if path.name == "alias.txt"]
    assert stored == [b"inside\n"]


def test_working_directory_output_files_refuse_a_link_out(tmp_path: Path) -> None:
    flow = """
        id: leak
        namespace: acme
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            outputFiles: ["*.txt"]
            tasks:
              - id: plant
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands:
                  - echo fine > ok.txt && ln -s /etc/passwd leak.txt
    """
    assert_refused(tmp_path, flow)


def test_duckdb_output_files_refuse_a_link_out(tmp_path: Path) -> None:
    pytest.importorskip("duckdb")
    flow = """
        id: leak
        namespace: acme
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: plant
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands:
                  - ln -s /etc/passwd out.csv
              - id: query
                type: io.kestra.plugin.jdbc.duckdb.Query
                sql: SELECT 1 AS one
                outputFiles: ["out.csv"]
    """
    assert_refused(tmp_path, flow)


def test_deprecated_bash_and_local_files_refuse_a_link_out(tmp_path: Path) -> None:
    bash = """
        id: leak
        namespace: acme
        tasks:
          - id: bash
            type: io.kestra.core.tasks.scripts.Bash
            outputFiles: ["leak.txt"]
            commands:
              - ln -sf /etc/passwd {{ outputFiles['leak.txt'] }}
    """
    done = run_file(tmp_path, bash)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "outside the working directory" in done.stdout
    local_files = """
        id: leak2
        namespace: acme
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: plant
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner:
                  type: io.kestra.plugin.core.runner.Process
                commands:
                  - ln -s /etc/passwd leak.txt
              - id: collect
                type: io.kestra.plugin.core.storage.LocalFiles
                outputs: ["leak.txt"]
    """
    assert_refused(tmp_path, local_files)


# --- the storage itself ------------------------------------------------------------------------------------


def test_storage_put_refuses_a_task_folder_file_that_links_out(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "data", "acme", "leak", "e1").for_task("t")
    folder = tmp_path / "data" / "executions" / "e1" / "work" / "run1"
    folder.mkdir(parents=True)
    (folder / "leak").symlink_to(PASSWD)
    (folder / "sibling").symlink_to(folder.parent / "run2" / "x")  # another task's folder is outside too
    (folder.parent / "run2").mkdir()
    (folder.parent / "run2" / "x").write_text("other task")
    (folder / "real").write_text("ok")
    (folder / "alias").symlink_to("real")
    for name in ("leak", "sibling"):
        with pytest.raises(TaskFailed, match="outside the task's working directory"):
            storage.put(folder / name, name)
    uri = storage.put(folder / "alias", "alias")
    assert storage.path(uri).read_text() == "ok"
    assert [p.name for p, _ in _every_byte(tmp_path / "data" / "executions" / "e1" / "t")] == ["alias"]


def test_storage_put_never_writes_through_a_link_in_the_storage_folder(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "data", "acme", "leak", "e1").for_task("t")
    victim = tmp_path / "victim"
    (tmp_path / "data" / "executions" / "e1" / "t").mkdir(parents=True)
    (tmp_path / "data" / "executions" / "e1" / "t" / "sub").symlink_to(tmp_path)
    with pytest.raises(TaskFailed, match="a link stands on its way"):
        storage.put(b"x", "sub/victim")
    assert not victim.exists()


# --- the Docker runner's command line (no Docker engine runs here) ---------------------------------------

SECRET = "s3cr3t-Value-42"


def test_docker_command_line_carries_no_env_value(tmp_path: Path) -> None:
    """The argv and environment `docker run` would get. A real engine cannot run here, so this is a unit test."""
    ctx = make_context(tmp_path)
    scratch_dir = ctx.workdir / ".scratch"
    scratch_dir.mkdir()
    spec = ScriptSpec(
        commands=["echo $API_TOKEN"],
        docker_image="alpine",
        env={"API_TOKEN": SECRET, "DOCKER_HOST": f"tcp://{SECRET}", "PATH": "/opt/bin"},
    )
    argv, env, _ = _command(ctx, spec, Scratch(local=scratch_dir, visible=Path("/workdir/.scratch")))
    assert not any(SECRET in arg for arg in argv), argv
    assert {argv[i + 1] for i, arg in enumerate(argv) if arg == "-e"} == {"API_TOKEN", "WORKING_DIR"}
    assert env["API_TOKEN"] == SECRET and env["WORKING_DIR"] == "/workdir"
    # names the docker CLI reads itself would change the CLI: they go in a 0600 env file instead
    assert env.get("DOCKER_HOST") != f"tcp://{SECRET}" and env["PATH"] != "/opt/bin"
    env_file = Path(argv[argv.index("--env-file") + 1])
    assert env_file.parent == scratch_dir
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert env_file.read_text() == f"DOCKER_HOST=tcp://{SECRET}\nPATH=/opt/bin\n"


def test_docker_env_refuses_what_it_cannot_carry(tmp_path: Path) -> None:
    with pytest.raises(TaskFailed, match="several lines"):
        docker_env(tmp_path, {"DOCKER_CONFIG": "a\nb"})
    with pytest.raises(TaskFailed, match="not a valid variable name"):
        docker_env(tmp_path, {"A=B": "x"})
    args, values = docker_env(tmp_path, {"MULTI": "line one\nline two"})
    assert args == ["-e", "MULTI"] and values == {"MULTI": "line one\nline two"}


def test_docker_run_through_a_stand_in_docker_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in `docker` (a real process; no engine can run here) records its argv, its environment and the
    env file while it runs; afterwards the env file is gone."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "record"
    fake = bin_dir / "docker"
    fake.write_text(
        "#!/bin/sh\n"
        '[ "$1" = info ] && exit 0\n'
        f'printf "%s\\n" "$@" > {record}.argv\n'
        f'printf "%s" "$API_TOKEN" > {record}.env\n'
        'while [ $# -gt 0 ]; do [ "$1" = --env-file ] && cat "$2" > ' + f"{record}.file" + "; shift; done\n"
        f"cat /proc/$$/cmdline > {record}.cmdline\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    ctx = make_context(tmp_path / "ctx")
    spec = ScriptSpec(commands=["true"], docker_image="alpine", env={"API_TOKEN": SECRET, "DOCKER_TLS": SECRET})
    execute(ctx, spec)
    argv = Path(f"{record}.argv").read_text()
    assert SECRET not in argv and SECRET not in Path(f"{record}.cmdline").read_text()
    assert Path(f"{record}.env").read_text() == SECRET
    assert Path(f"{record}.file").read_text() == f"DOCKER_TLS={SECRET}\n"
    leftovers = [p for p, data in _every_byte(tmp_path / "ctx") if SECRET.encode() in data and p.suffix != ".db"]
    assert leftovers == []


def test_a_file_coming_back_from_a_worker_is_written_only_into_its_own_execution(tmp_path: Path) -> None:
    """The control plane writes what a Celery worker sends back at the path its URI names (`write_at`): a URI of
    another execution, which a worker could name, is refused and nothing is written."""
    mine = LocalStorage(tmp_path, "acme.data", "load", "exec-1")
    other = LocalStorage(tmp_path, "acme.data", "load", "exec-2").uri("task/secret.csv")
    with pytest.raises(TaskFailed, match="is not a file of execution exec-1"):
        mine.write_at(other, b"overwritten")
    assert not (tmp_path / "executions" / "exec-2").exists()
    own = mine.uri("task/out.csv")
    mine.write_at(own, b"a,b\n")
    assert mine.path(own).read_bytes() == b"a,b\n"
