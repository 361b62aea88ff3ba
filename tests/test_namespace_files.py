"""Namespace files from git, as a user meets them: files committed under `flows/_files/<namespace>/` beside the
flows, synced, then read by a script task (`namespaceFiles`), by `read()` and by `namespace.DownloadFiles` in
executions run by `gitsync run`; versioned with the commit (a replay sees its revision's files); listed by
`gitsync plan`; and never loaded as flows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import installed
import pytest
from runtime import Runtime, gitsync_cli, run_outputs, stored_file

from gitsync.sync.apply import sync_source

SHELL = "io.kestra.plugin.scripts.shell.Commands"
PROCESS = "\n    taskRunner:\n      type: io.kestra.plugin.core.runner.Process"

REPORT = f"""
id: report
namespace: acme.data
tasks:
  - id: show
    type: {SHELL}{PROCESS}
    namespaceFiles:
      enabled: true
      include:
        - "**/*.sql"
        - greeting.txt
      exclude:
        - drafts/**
    commands:
      - cat greeting.txt
      - find . -name "*.sql" | sort | xargs echo sql-files
      - test ! -e drafts/wip.sql && echo "no drafts"
      - test ! -e notes.md && echo "no notes"
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ read('greeting.txt') | trim }}}} / {{{{ read('shared.txt', namespace='acme') | trim }}}}"
  - id: download
    type: io.kestra.plugin.core.namespace.DownloadFiles
    namespace: "{{{{ flow.namespace }}}}"
    files:
      - "queries/*.sql"
outputs:
  - id: greeting
    type: STRING
    value: "{{{{ outputs.read.value }}}}"
  - id: files
    type: JSON
    value: "{{{{ outputs.download.files }}}}"
"""

FILES = {
    "flows/_files/acme.data/greeting.txt": "hello from v1\n",
    "flows/_files/acme.data/queries/daily.sql": "select 1;\n",
    "flows/_files/acme.data/queries/deep/weekly.sql": "select 7;\n",
    "flows/_files/acme.data/drafts/wip.sql": "select -1;\n",
    "flows/_files/acme.data/notes.md": "not copied\n",
    "flows/_files/acme/shared.txt": "shared v1\n",
    # a YAML namespace file is a file, not a flow: it must not be loaded (it would not validate)
    "flows/_files/acme.data/config.yaml": "id: not-a-flow\nthis: is data\n",
}


def _sync(runtime: Runtime, files: dict[str, str | None]) -> str:
    sha = runtime.repo.commit({k: textwrap.dedent(v) if v else None for k, v in files.items()})
    result = sync_source(runtime.store, runtime.source, runtime.data_dir, installed.registry())
    assert result.outcome == "applied", result.errors
    return sha


@pytest.fixture
def deployed(tmp_path: Path) -> tuple[tuple[str, str], Runtime]:
    runtime = Runtime(tmp_path)
    _sync(runtime, {"flows/report.yaml": REPORT, **FILES})
    runtime.close()
    return (str(tmp_path / "state.db"), str(tmp_path / "data")), runtime


def _run(state: tuple[str, str]) -> subprocess.CompletedProcess[str]:
    done = gitsync_cli(state, "run", "acme.data.report")
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _execution_id(stdout: str) -> str:
    first = stdout.splitlines()[0]
    assert first.startswith("execution "), stdout
    return first.split()[1]


def test_a_script_task_reads_the_namespace_files_it_includes(deployed: tuple[tuple[str, str], Runtime]) -> None:
    state, _ = deployed
    done = _run(state)
    assert "hello from v1" in done.stdout
    assert "sql-files ./queries/daily.sql ./queries/deep/weekly.sql" in done.stdout  # not drafts/wip.sql
    assert "no drafts" in done.stdout and "no notes" in done.stdout
    outputs = run_outputs(done)
    assert outputs["greeting"] == "hello from v1 / shared v1"
    files = outputs["files"]
    assert sorted(files) == ["queries/daily.sql"]  # `*` stays in its folder: not queries/deep/weekly.sql
    assert stored_file(state, files["queries/daily.sql"]).read_text(encoding="utf-8") == "select 1;\n"
    flows = gitsync_cli(state, "flows", "--format", "json")
    assert [row["uid"] for row in json.loads(flows.stdout)] == ["acme.data.report"]  # config.yaml is no flow


def test_a_new_commit_changes_the_files_of_the_next_run_but_a_replay_sees_its_own(
    deployed: tuple[tuple[str, str], Runtime], tmp_path: Path
) -> None:
    state, _ = deployed
    first = _execution_id(_run(state).stdout)
    runtime = Runtime(tmp_path)
    try:
        _sync(runtime, {"flows/_files/acme.data/greeting.txt": "hello from v2\n"})
    finally:
        runtime.close()

    flows = gitsync_cli(state, "flows", "--format", "json")
    assert [row["revision"] for row in json.loads(flows.stdout)] == [2]  # a new revision: same file, new files
    fresh = _run(state)
    assert "hello from v2" in fresh.stdout and run_outputs(fresh)["greeting"] == "hello from v2 / shared v1"

    replay = gitsync_cli(state, "replay", first, "--task", "show")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "hello from v1" in replay.stdout and "hello from v2" not in replay.stdout
    assert run_outputs(replay)["greeting"] == "hello from v1 / shared v1"


def test_plan_lists_the_namespace_files_that_change(deployed: tuple[tuple[str, str], Runtime], tmp_path: Path) -> None:
    runtime = Runtime(tmp_path)
    try:
        base = runtime.repo.head()
        head = runtime.repo.commit(
            {
                "flows/_files/acme.data/greeting.txt": "hello from v2\n",
                "flows/_files/acme.data/queries/new.sql": "select 2;\n",
                "flows/_files/acme.data/notes.md": None,
                "flows/_files/stray.txt": "in no namespace\n",
            }
        )
    finally:
        runtime.close()
    args = ["-m", "gitsync", "plan", "--repo", str(tmp_path / "repo"), "--base", base, "--head", head]
    text = subprocess.run([sys.executable, *args, "--path", "flows"], capture_output=True, text=True, check=False)
    assert text.returncode == 0, text.stderr
    assert "namespace files: 2 added, 1 changed, 1 removed" in text.stdout
    assert "~ namespace file acme.data/greeting.txt" in text.stdout
    assert "+ namespace file acme.data/queries/new.sql" in text.stdout
    assert "- namespace file acme.data/notes.md" in text.stdout
    assert "stray.txt" in text.stdout and "belong to no namespace" in text.stdout
    assert "no changes" not in text.stdout
    assert "namespace files changed in acme.data: the flows of this namespace get a new revision" in text.stdout

    as_json = subprocess.run(
        [sys.executable, *args, "--path", "flows", "--format", "json"], capture_output=True, text=True, check=False
    )
    plan = json.loads(as_json.stdout)
    assert plan["namespace_files"] == {
        "added": ["acme.data/queries/new.sql", "stray.txt"],
        "changed": ["acme.data/greeting.txt"],
        "removed": ["acme.data/notes.md"],
    }
    assert {"namespace": "acme.data", "path": "queries/new.sql", "change": "added"} in plan["namespace_file_changes"]
    assert plan["flows"]["added"] == [] and plan["flows"]["changed"] == []

    markdown = subprocess.run(
        [sys.executable, *args, "--path", "flows", "--format", "markdown"], capture_output=True, text=True, check=False
    )
    assert "| ✏️ changed | `acme.data` | `greeting.txt` |" in markdown.stdout


def test_a_missing_namespace_file_fails_the_task_naming_the_file_and_the_commit(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path)
    flow = """
    id: missing
    namespace: acme
    tasks:
      - id: read
        type: io.kestra.plugin.core.debug.Return
        format: "{{ read('nope.sql') }}"
    """
    try:
        sha = _sync(runtime, {"flows/missing.yaml": flow})
    finally:
        runtime.close()
    done = gitsync_cli((str(tmp_path / "state.db"), str(tmp_path / "data")), "run", "acme.missing")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "namespace file 'nope.sql' of namespace 'acme' does not exist" in done.stdout
    assert f"flows/_files/acme/ at commit {sha[:7]}" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_upload_and_delete_files_fail_saying_to_commit_to_git(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path)
    flow = """
    id: writer
    namespace: acme
    tasks:
      - id: upload
        type: io.kestra.plugin.core.namespace.UploadFiles
        namespace: acme
        files:
          - "kestra:///x/y.txt"
        destination: /scripts
        allowFailure: true
      - id: delete
        type: io.kestra.plugin.core.namespace.DeleteFiles
        namespace: acme
        files:
          - "*.sql"
    """
    try:
        _sync(runtime, {"flows/writer.yaml": flow})
    finally:
        runtime.close()
    done = gitsync_cli((str(tmp_path / "state.db"), str(tmp_path / "data")), "run", "acme.writer")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "UploadFiles cannot write namespace files in gitsync" in done.stdout
    assert "Commit the files under _files/acme/scripts/ beside your flows instead" in done.stdout
    assert "DeleteFiles cannot delete namespace files in gitsync" in done.stdout
    assert "Remove the files matching ['*.sql'] from _files/acme/ in git instead" in done.stdout


def test_validate_of_a_folder_skips_the_namespace_files(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    (flows / "_files" / "acme").mkdir(parents=True)
    (flows / "_files" / "acme" / "data.yaml").write_text("not: a flow\n", encoding="utf-8")
    (flows / "ok.yaml").write_text(
        "id: ok\nnamespace: acme\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "gitsync", "validate", str(flows)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "data.yaml" not in done.stdout + done.stderr


def test_a_working_directory_copies_the_namespace_files_for_its_tasks(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path)
    flow = f"""
    id: wd
    namespace: acme
    tasks:
      - id: folder
        type: io.kestra.plugin.core.flow.WorkingDirectory
        namespaceFiles:
          enabled: true
          exclude:
            - /ignore/**
        tasks:
          - id: show
            type: {SHELL}
            taskRunner:
              type: io.kestra.plugin.core.runner.Process
            commands:
              - cat scripts/run.sh
              - test ! -e ignore/secret.txt && echo "ignored stays out"
    """
    try:
        _sync(
            runtime,
            {
                "flows/wd.yaml": flow,
                "flows/_files/acme/scripts/run.sh": "echo from the namespace\n",
                "flows/_files/acme/ignore/secret.txt": "no\n",
            },
        )
    finally:
        runtime.close()
    done = gitsync_cli((str(tmp_path / "state.db"), str(tmp_path / "data")), "run", "acme.wd")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "echo from the namespace" in done.stdout and "ignored stays out" in done.stdout


def test_namespace_files_of_a_flow_run_from_a_file_fail_saying_why(tmp_path: Path) -> None:
    flow = tmp_path / "local.yaml"
    flow.write_text(
        f"id: local\nnamespace: acme\ntasks:\n  - id: s\n    type: {SHELL}\n    taskRunner:\n"
        "      type: io.kestra.plugin.core.runner.Process\n    namespaceFiles:\n      enabled: true\n"
        "    commands: [ls]\n",
        encoding="utf-8",
    )
    state = (str(tmp_path / "state.db"), str(tmp_path / "data"))
    done = gitsync_cli(state, "run", "--file", str(flow))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "namespace files are read from git at the commit of the execution's flow revision" in done.stdout
