"""`gitsync plan`: the pure plan builder, the renderers, and the command end to end on real git repositories."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import installed
import pytest

from gitsync.cli.options import add_plan_arguments
from gitsync.cli.plan import run_plan
from gitsync.flows.loader import Problem, load_flow_source
from gitsync.sync import compute as plan_cmd
from gitsync.sync.diff import PropertyChange, diff_values
from gitsync.sync.plan import FlowPlan, FlowVersion, Plan, PlanInput, build_plan
from gitsync.sync.render import render_markdown, render_text

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def flow(flow_id: str, message: str = "hello", namespace: str = "demo", extra: str = "") -> str:
    return f"""\
id: {flow_id}
namespace: {namespace}
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: {message}
{extra}"""


ETL = """\
id: etl
namespace: demo
inputs:
  - id: day
    type: STRING
    defaults: monday
tasks:
  - id: steps
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: extract
        type: io.kestra.plugin.core.log.Log
        message: extracting
      - id: load
        type: io.kestra.plugin.core.log.Log
        message: loading
triggers:
  - id: nightly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 2 * * *"
    timezone: Europe/Paris
"""


class Repo:
    """A real git repository in tmp_path, driven with the git CLI."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.root, env=_ENV, check=True, capture_output=True, text=True
        ).stdout.strip()

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        for rel, text in files.items():
            path = self.root / rel
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def move(self, old: str, new: str) -> str:
        (self.root / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", old, new)
        self.git("commit", "-q", "-m", f"move {old}")
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "repo")


def parse_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_plan_arguments(parser)
    return parser.parse_args(list(argv))


def plan_cli(repo: Repo, base: str, head: str, *extra: str, fmt: str = "json") -> tuple[int, Any]:
    """Run the command as the CLI does; json output is decoded."""
    out = io.StringIO()
    args = parse_args("--repo", str(repo.root), "--base", base, "--head", head, "--format", fmt, *extra)
    code = run_plan(args, registry=installed.registry(), now=NOW, out=out)
    return code, json.loads(out.getvalue()) if fmt == "json" else out.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# end to end: table of repository histories


def _add(repo: Repo) -> tuple[str, str]:
    base = repo.commit({"demo/hello.yaml": flow("hello")})
    return base, repo.commit({"demo/new.yaml": flow("new")})


def _change(repo: Repo) -> tuple[str, str]:
    base = repo.commit({"demo/hello.yaml": flow("hello")})
    return base, repo.commit({"demo/hello.yaml": flow("hello", "bonjour")})


def _remove(repo: Repo) -> tuple[str, str]:
    base = repo.commit({"demo/hello.yaml": flow("hello"), "demo/old.yaml": flow("old")})
    return base, repo.commit({"demo/old.yaml": None})


def _rename(repo: Repo) -> tuple[str, str]:
    base = repo.commit({"demo/hello.yaml": flow("hello")})
    return base, repo.move("demo/hello.yaml", "greetings/hello.yml")


def _comment_only(repo: Repo) -> tuple[str, str]:
    base = repo.commit({"demo/hello.yaml": flow("hello")})
    text = "# say hello\n" + flow("hello").replace("message: hello", "message: 'hello'   # quoted now")
    return base, repo.commit({"demo/hello.yaml": text})


def _no_change(repo: Repo) -> tuple[str, str]:
    base = repo.commit({"demo/hello.yaml": flow("hello")})
    return base, repo.commit({"README.md": "docs"})


CASES = [
    pytest.param(_add, {"added": ["demo.new"], "changed": [], "removed": [], "moved": []}, id="add"),
    pytest.param(_change, {"added": [], "changed": ["demo.hello"], "removed": [], "moved": []}, id="change"),
    pytest.param(_remove, {"added": [], "changed": [], "removed": ["demo.old"], "moved": []}, id="remove"),
    pytest.param(_rename, {"added": [], "changed": [], "removed": [], "moved": ["demo.hello"]}, id="rename"),
    pytest.param(_comment_only, {"added": [], "changed": ["demo.hello"], "removed": [], "moved": []}, id="comment"),
    pytest.param(_no_change, {"added": [], "changed": [], "removed": [], "moved": []}, id="nothing"),
]


@pytest.mark.parametrize(("build", "expected"), CASES)
def test_plan_flows(repo: Repo, build: Any, expected: dict[str, list[str]]) -> None:
    base, head = build(repo)
    code, data = plan_cli(repo, base, head)
    assert code == 0
    assert data["flows"] == expected
    assert (data["base"], data["head"], data["valid"]) == (base, head, True)


def test_change_lists_task_properties(repo: Repo) -> None:
    base, head = _change(repo)
    _, data = plan_cli(repo, base, head)
    (change,) = data["flow_changes"]
    assert change["tasks"]["changed"] == [
        {
            "id": "greet",
            "change": "changed",
            "type": "io.kestra.plugin.core.log.Log",
            "properties": [{"path": "message", "old": "hello", "new": "bonjour"}],
        }
    ]
    assert change["formatting_only"] is False


def test_comment_only_change_is_marked(repo: Repo) -> None:
    base, head = _comment_only(repo)
    _, text = plan_cli(repo, base, head, fmt="text")
    assert "~ flow demo.hello (demo/hello.yaml): formatting or comments only" in text
    _, data = plan_cli(repo, base, head)
    assert data["flow_changes"][0]["formatting_only"] is True
    assert data["flow_changes"][0]["tasks"] == {"added": [], "changed": [], "removed": []}


def test_rename_is_a_move_not_remove_and_add(repo: Repo) -> None:
    base, head = _rename(repo)
    _, text = plan_cli(repo, base, head, fmt="text")
    assert "> flow demo.hello (greetings/hello.yml) moved from demo/hello.yaml" in text
    _, data = plan_cli(repo, base, head)
    assert data["flow_changes"][0] | {"tasks": None} == {
        "uid": "demo.hello",
        "change": "moved",
        "path": "greetings/hello.yml",
        "old_path": "demo/hello.yaml",
        "moved": True,
        "formatting_only": False,
        "restores": None,
        "invalid_at_base": False,
        "tasks": None,
        "properties": [],
    }


def test_nested_tasks_and_flow_properties(repo: Repo) -> None:
    base = repo.commit({"etl.yaml": ETL})
    transform = "      - id: transform\n        type: io.kestra.plugin.core.log.Log\n        message: t\n"
    changed = (
        ETL.replace("message: loading", "message: loading fast")
        .replace("defaults: monday", "defaults: friday")
        .replace("      - id: load\n", transform + "      - id: load\n")
        .replace("      - id: extract\n        type: io.kestra.plugin.core.log.Log\n        message: extracting\n", "")
    )
    head = repo.commit({"etl.yaml": changed})
    _, data = plan_cli(repo, base, head)
    tasks = data["flow_changes"][0]["tasks"]
    assert [t["id"] for t in tasks["added"]] == ["transform"]
    assert [t["id"] for t in tasks["removed"]] == ["extract"]
    assert tasks["changed"] == [
        {
            "id": "load",
            "change": "changed",
            "type": "io.kestra.plugin.core.log.Log",
            "properties": [{"path": "message", "old": "loading", "new": "loading fast"}],
        },
        {
            "id": "steps",
            "change": "changed",
            "type": "io.kestra.plugin.core.flow.Sequential",
            "properties": [{"path": "tasks", "old": ["extract", "load"], "new": ["transform", "load"]}],
        },
    ]
    assert data["flow_changes"][0]["properties"] == [{"path": "inputs[0].defaults", "old": "monday", "new": "friday"}]
    assert data["triggers"] == {"added": [], "changed": [], "removed": []}


def test_cron_change_shows_next_fires_in_the_trigger_timezone(repo: Repo) -> None:
    base = repo.commit({"etl.yaml": ETL})
    head = repo.commit({"etl.yaml": ETL.replace('"0 2 * * *"', '"30 6 * * 1"')})
    code, data = plan_cli(repo, base, head)
    assert code == 0
    assert data["triggers"] == {"added": [], "changed": ["demo.etl/nightly"], "removed": []}
    (trigger,) = data["trigger_changes"]
    assert trigger["properties"] == [{"path": "cron", "old": "0 2 * * *", "new": "30 6 * * 1"}]
    assert trigger["timezone"] == "Europe/Paris"
    # 2025-03-01 is a Saturday; Paris is UTC+1 until the last Sunday of March (30th), then UTC+2.
    assert trigger["next_fires"] == [
        "2025-03-03T06:30:00+01:00",
        "2025-03-10T06:30:00+01:00",
        "2025-03-17T06:30:00+01:00",
    ]
    _, text = plan_cli(repo, base, head, fmt="text")
    assert '~ trigger demo.etl/nightly (cron "30 6 * * 1" Europe/Paris)' in text
    assert "next: 2025-03-03T06:30:00+01:00" in text


def test_triggers_added_and_removed_with_flows(repo: Repo) -> None:
    base = repo.commit({"etl.yaml": ETL})
    head = repo.commit({"etl.yaml": None, "etl2.yaml": ETL.replace("id: etl", "id: etl2").replace("Europe/Paris", "")})
    _, data = plan_cli(repo, base, head)
    assert data["triggers"] == {"added": ["demo.etl2/nightly"], "changed": [], "removed": ["demo.etl/nightly"]}
    added = next(t for t in data["trigger_changes"] if t["change"] == "added")
    assert added["timezone"] == "UTC"
    assert added["next_fires"][0] == "2025-03-02T02:00:00+00:00"


def test_disabled_trigger_has_no_next_fires(repo: Repo) -> None:
    base = repo.commit({"etl.yaml": ETL})
    head = repo.commit({"etl.yaml": ETL + "    disabled: true\n"})
    _, data = plan_cli(repo, base, head)
    (trigger,) = data["trigger_changes"]
    assert (trigger["disabled"], trigger["next_fires"], trigger["note"]) == (True, [], "disabled: will not fire")


def test_revert_restores_the_version_of_an_earlier_commit(repo: Repo) -> None:
    first = repo.commit({"demo/hello.yaml": flow("hello"), "demo/other.yaml": flow("other")})
    repo.commit({"demo/other.yaml": flow("other", "changed")})
    base = repo.commit({"demo/hello.yaml": flow("hello", "v2")})
    repo.git("revert", "--no-edit", base)
    head = repo.git("rev-parse", "HEAD")
    _, data = plan_cli(repo, base, head)
    assert data["flows"]["changed"] == ["demo.hello"]
    assert data["flow_changes"][0]["restores"] == first
    _, text = plan_cli(repo, base, head, fmt="text")
    assert f"restores the version of commit {first[:7]}" in text


def shallow_clone(repo: Repo, target: Path, depth: int, *extra: str) -> Repo:
    """`git clone --depth N` of `repo`, as CI makes (file:// so git honours the depth)."""
    subprocess.run(
        ["git", "clone", "-q", f"--depth={depth}", *extra, f"file://{repo.root}", str(target)],
        env=_ENV,
        check=True,
        capture_output=True,
    )
    clone = Repo.__new__(Repo)
    clone.root = target
    return clone


def test_a_shallow_clone_says_it_looked_for_reverts_only_in_the_history_it_holds(repo: Repo, tmp_path: Path) -> None:
    first = repo.commit({"demo/hello.yaml": flow("hello")})
    repo.commit({"demo/hello.yaml": flow("hello", "v2")})
    base = repo.commit({"demo/hello.yaml": flow("hello", "v3")})
    head = repo.commit({"demo/hello.yaml": flow("hello")})
    clone = shallow_clone(repo, tmp_path / "shallow", 2)  # head and base, none of base's parents
    _, data = plan_cli(clone, base, head)
    assert data["flow_changes"][0]["restores"] is None  # first is not in the clone: it cannot be named
    assert data["notes"] == [
        "the clone is shallow: reverts were looked for in only 1 commit(s) of base's history (a full clone looks "
        "at up to 200), so a change that restores an older version may not say so; fetch more history "
        "(e.g. `git fetch --deepen=200`)"
    ]
    _, full = plan_cli(repo, base, head)
    assert full["flow_changes"][0]["restores"] == first and full["notes"] == []


def test_a_shallow_clone_does_not_call_branches_unrelated_when_it_cannot_tell(repo: Repo, tmp_path: Path) -> None:
    repo.commit({"demo/hello.yaml": flow("hello")})
    base = repo.commit({"demo/hello.yaml": flow("hello", "v2")})
    repo.git("checkout", "-q", "-b", "feature", "HEAD~1")
    head = repo.commit({"demo/new.yaml": flow("new")})
    repo.git("checkout", "-q", "main")
    clone = shallow_clone(repo, tmp_path / "shallow", 1, "--no-single-branch")  # each tip, no common commit
    _, data = plan_cli(clone, base, head)
    assert data["unrelated_histories"] is False
    assert (
        "the clone is shallow: whether base and head share any commit could not be told; fetch more history "
        "(e.g. `git fetch --unshallow`)" in data["notes"]
    )
    assert not any(note.startswith("unrelated histories") for note in data["notes"])


def test_readding_a_removed_flow_restores_it(repo: Repo) -> None:
    first = repo.commit({"a.yaml": flow("a"), "b.yaml": flow("b")})
    base = repo.commit({"b.yaml": None})
    head = repo.commit({"b.yaml": flow("b")})
    _, data = plan_cli(repo, base, head)
    assert data["flows"]["added"] == ["demo.b"]
    assert data["flow_changes"][0]["restores"] == first


def test_force_push_to_unrelated_history(repo: Repo) -> None:
    base = repo.commit({"demo/hello.yaml": flow("hello"), "demo/gone.yaml": flow("gone")})
    repo.git("checkout", "-q", "--orphan", "rewritten")
    repo.git("rm", "-q", "-r", "--cached", ".")
    head = repo.commit({"demo/hello.yaml": flow("hello", "rewritten"), "demo/gone.yaml": None})
    code, data = plan_cli(repo, base, head)
    assert code == 0
    assert data["unrelated_histories"] is True
    assert data["flows"]["changed"] == ["demo.hello"] and data["flows"]["removed"] == ["demo.gone"]
    assert any("unrelated histories" in note for note in data["notes"])


def test_invalid_head_exits_1_with_file_and_line(repo: Repo) -> None:
    base = repo.commit({"flows/hello.yaml": flow("hello")})
    head = repo.commit({"flows/hello.yaml": flow("hello").replace("message:", "mesage:")})
    code, data = plan_cli(repo, base, head)
    assert code == 1 and data["valid"] is False
    (error,) = data["errors"]
    assert (error["file"], error["line"], error["column"]) == ("flows/hello.yaml", 6, 5)
    assert "mesage" in error["message"]
    assert data["flows"]["removed"] == []  # an unreadable head file is not a removal
    code, text = plan_cli(repo, base, head, fmt="text")
    assert code == 1 and "flows/hello.yaml:6:5: flow 'demo.hello': tasks[0].mesage: unknown property" in text
    _, markdown = plan_cli(repo, base, head, fmt="markdown")
    assert "❌ head is invalid" in markdown and "`flows/hello.yaml:6:5`" in markdown


def test_a_base_that_does_not_load_is_said_and_its_flows_are_not_compared(repo: Repo) -> None:
    """Base broke two flows; head fixes one (back to its first version) and deletes the other."""
    first = repo.commit({"demo/hello.yaml": flow("hello"), "demo/gone.yaml": flow("gone"), "demo/ok.yaml": flow("ok")})
    broken = {name: flow(name).replace("message:", "mesage:") for name in ("hello", "gone")}
    base = repo.commit({f"demo/{name}.yaml": text for name, text in broken.items()})
    head = repo.commit({"demo/hello.yaml": flow("hello"), "demo/gone.yaml": None})
    code, data = plan_cli(repo, base, head)
    assert code == 0 and data["valid"] is True and data["errors"] == []
    assert [(e["file"], e["line"]) for e in data["base_errors"]] == [("demo/gone.yaml", 6), ("demo/hello.yaml", 6)]
    assert data["flows"]["added"] == ["demo.hello"] and data["flows"]["removed"] == []
    (change,) = data["flow_changes"]
    assert (change["change"], change["invalid_at_base"], change["restores"]) == ("added", True, first)
    (note,) = data["notes"]
    assert note == (
        f"base {base[:7]} is invalid: 2 error(s) in demo/gone.yaml, demo/hello.yaml. The flows of these files "
        "cannot be read at base, so they are not compared: each flow head defines in them is shown as added, and "
        "a flow they no longer define is not shown as removed"
    )

    _, text = plan_cli(repo, base, head, fmt="text")
    assert f"note: {note}" in text
    assert "+ flow demo.hello (demo/hello.yaml): invalid at base, not compared" in text
    assert f"restores the version of commit {first[:7]}" in text
    assert "errors at base (not head's: they only limit what is compared):" in text
    assert "  demo/gone.yaml:6:5: flow 'demo.gone': tasks[0].mesage: unknown property" in text

    _, markdown = plan_cli(repo, base, head, fmt="markdown")
    assert f"> **Note:** {note}" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| 🆕 added | `demo.hello`"))
    assert row.endswith(f"| invalid at base, not compared; restores the version of commit `{first[:7]}` |"), row
    assert "<details><summary>2 error(s) at base</summary>" in markdown
    assert "- `demo/gone.yaml:6:5` (tasks[0].mesage): unknown property" in markdown


def test_invalid_yaml_in_head(repo: Repo) -> None:
    base = repo.commit({"a.yaml": flow("a")})
    head = repo.commit({"b.yaml": "id: b\nnamespace: demo\ntasks: [\n"})
    code, data = plan_cli(repo, base, head)
    assert code == 1 and data["errors"][0]["file"] == "b.yaml" and data["errors"][0]["line"] is not None


def test_duplicate_uid_with_an_unchanged_file_is_an_error(repo: Repo) -> None:
    base = repo.commit({"one/hello.yaml": flow("hello"), "one/other.yaml": flow("other")})
    head = repo.commit({"two/copy.yaml": flow("hello", "copy")})
    code, data = plan_cli(repo, base, head)
    assert code == 1
    (error,) = data["errors"]
    assert error["file"] == "two/copy.yaml" and error["line"] == 1
    assert error["message"].startswith("flow 'demo.hello' is also defined in one/hello.yaml")


def test_duplicate_uid_between_two_changed_files(repo: Repo) -> None:
    base = repo.commit({"a.yaml": flow("a")})
    head = repo.commit({"b.yaml": flow("same"), "c.yaml": flow("same", "again")})
    code, data = plan_cli(repo, base, head)
    assert code == 1 and data["errors"][0]["message"].startswith("flow 'demo.same' is also defined in b.yaml")


def test_uid_moving_between_files_is_not_a_duplicate(repo: Repo) -> None:
    base = repo.commit({"a.yaml": flow("a"), "b.yaml": flow("b")})
    head = repo.commit({"a.yaml": flow("b"), "b.yaml": None})
    code, data = plan_cli(repo, base, head)
    assert code == 0
    assert data["flows"] == {"added": [], "changed": [], "removed": ["demo.a"], "moved": ["demo.b"]}


def test_path_limits_the_plan_to_a_folder(repo: Repo) -> None:
    base = repo.commit({"flows/a.yaml": flow("a"), "other/b.yaml": flow("b")})
    head = repo.commit({"flows/a.yaml": flow("a", "x"), "other/b.yaml": flow("b", "y"), "other/c.yaml": "bad: ["})
    code, data = plan_cli(repo, base, head, "--path", "flows")
    assert code == 0
    assert data["flows"]["changed"] == ["demo.a"] and data["path"] == "flows"
    assert data["flow_changes"][0]["path"] == "flows/a.yaml"
    code, data = plan_cli(repo, base, head, "--path", "nowhere")
    assert code == 0 and data["flows"]["changed"] == [] and data["notes"]


def test_namespace_prefix_violation(repo: Repo) -> None:
    base = repo.commit({"a.yaml": flow("a", namespace="acme.demo")})
    head = repo.commit({"b.yaml": flow("b", namespace="other.team")})
    code, data = plan_cli(repo, base, head, "--namespace-prefix", "acme")
    assert code == 1
    assert (
        data["errors"][0]["file"] == "b.yaml" and "outside this source's prefix 'acme'" in data["errors"][0]["message"]
    )
    code, _ = plan_cli(repo, base, head, "--namespace-prefix", "other")
    assert code == 0


@pytest.mark.parametrize(
    ("base", "message"),
    [("nope", "unknown revision 'nope'"), ("HEAD~9", "revision 'HEAD~9' does not exist")],
)
def test_bad_revision_exits_2(repo: Repo, capsys: pytest.CaptureFixture[str], base: str, message: str) -> None:
    repo.commit({"a.yaml": flow("a")})
    args = parse_args("--repo", str(repo.root), "--base", base, "--head", "HEAD")
    code = run_plan(args, registry=installed.registry(), now=NOW)
    assert code == 2
    assert message in capsys.readouterr().err


def test_not_a_repository_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_plan(parse_args("--repo", str(tmp_path), "--base", "a", "--head", "b"), registry=installed.registry())
    assert code == 2 and "not a git repository" in capsys.readouterr().err


def test_cli_main_wires_plan(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    from gitsync.cli.main import main

    base, head = _add(repo)
    assert main(["plan", "--repo", str(repo.root), "--base", base, "--head", head]) == 0
    assert "+ flow demo.new (demo/new.yaml)" in capsys.readouterr().out


def test_only_changed_files_are_parsed(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.commit({f"f/{i}.yaml": flow(f"f{i}") for i in range(40)})
    base = repo.commit({"f/7.yaml": flow("f7", "v1")})
    head = repo.commit({"f/7.yaml": flow("f7", "v2")})
    parsed: list[str] = []
    real = plan_cmd.load_flow_source
    monkeypatch.setattr(plan_cmd, "load_flow_source", lambda path, *a, **k: parsed.append(path) or real(path, *a, **k))
    monkeypatch.setattr("gitsync.flows.loader.load_flow_source", plan_cmd.load_flow_source)
    scans: list[Any] = []
    monkeypatch.setattr(plan_cmd, "find_uid_owners", lambda *a, **k: scans.append(a) or {})
    code, data = plan_cli(repo, base, head)
    assert code == 0 and data["flows"]["changed"] == ["demo.f7"]
    assert parsed == ["f/7.yaml", "f/7.yaml"]  # base side and head side of the one changed file
    assert scans == []  # no new uid: unchanged files are not even read


def test_adding_a_flow_scans_only_blobs_that_could_clash(repo: Repo) -> None:
    base = repo.commit({f"f/{i}.yaml": flow(f"f{i}") for i in range(10)})
    head = repo.commit({"g/new.yaml": flow("new")})
    cache: dict[str, str | None] = {}
    registry = installed.registry()
    plan = plan_cmd.compute_plan(str(repo.root), base, head, registry=registry, now=NOW, uid_cache=cache).plan
    assert plan.valid and plan.flow_uids("added") == ["demo.new"]
    assert cache == {}  # no unchanged file contains the bytes "new"


# ---------------------------------------------------------------------------------------------------------------
# the pure function


def version(path: str, text: str, blob: str | None = None) -> FlowVersion:
    loaded = load_flow_source(path, text.encode(), installed.registry())
    assert loaded.flow is not None, loaded.problems
    return FlowVersion.of(path, blob or f"blob-{hash(text)}", loaded.flow)


def by_uid(*versions: FlowVersion) -> dict[str, FlowVersion]:
    return {v.uid: v for v in versions}


PURE_CASES = [
    pytest.param((), (("a.yaml", flow("a")),), [FlowPlan("demo.a", "added", "a.yaml")], id="added"),
    pytest.param((("a.yaml", flow("a")),), (), [FlowPlan("demo.a", "removed", None, "a.yaml")], id="removed"),
    pytest.param(
        (("a.yaml", flow("a"), "x"),),
        (("b.yaml", flow("a"), "x"),),
        [FlowPlan("demo.a", "moved", "b.yaml", "a.yaml")],
        id="moved",
    ),
    pytest.param((("a.yaml", flow("a"), "x"),), (("a.yaml", flow("a"), "x"),), [], id="same blob"),
    pytest.param(
        (("a.yaml", flow("a"), "x"),),
        (("a.yaml", flow("a", extra="disabled: false\n"), "y"),),
        [FlowPlan("demo.a", "changed", "a.yaml", formatting_only=True)],
        id="default made explicit",
    ),
    pytest.param(
        (("a.yaml", flow("a"), "x"),),
        (("a.yaml", flow("a").replace("core.log.Log", "core.log.Log\n    disabled: false"), "y"),),
        [FlowPlan("demo.a", "changed", "a.yaml", formatting_only=True)],
        id="task default made explicit",
    ),
    pytest.param(
        (("a.yaml", flow("a"), "x"),),
        (("a.yaml", flow("a").replace("io.kestra.plugin.core.log.Log", "io.kestra.core.tasks.log.Log"), "y"),),
        [FlowPlan("demo.a", "changed", "a.yaml", formatting_only=True)],
        id="legacy type name",
    ),
    pytest.param(
        (("a.yaml", flow("a"), "x"),),
        (("a.yaml", flow("a", extra="labels:\n  team: data\n"), "y"),),
        [FlowPlan("demo.a", "changed", "a.yaml", properties=(PropertyChange("labels", None, {"team": "data"}),))],
        id="flow property",
    ),
]


@pytest.mark.parametrize(("before", "after", "expected"), PURE_CASES)
def test_build_plan_table(before: tuple[Any, ...], after: tuple[Any, ...], expected: list[FlowPlan]) -> None:
    applied = by_uid(*(version(*item) for item in before))
    desired = by_uid(*(version(*item) for item in after))
    plan = build_plan(PlanInput("b" * 40, "h" * 40, applied, desired, NOW))
    assert list(plan.flows) == expected


def test_build_plan_revert_and_problems() -> None:
    old, new = version("a.yaml", flow("a"), "x"), version("a.yaml", flow("a", "v0"), "y")
    problem = Problem("c.yaml", 3, 1, "bad", flow="demo.c")
    warning = Problem("a.yaml", 1, 1, "hmm", "warning")
    plan = build_plan(
        PlanInput(
            "b" * 40,
            "h" * 40,
            by_uid(old, version("c.yaml", flow("c"))),
            by_uid(new),
            NOW,
            problems=[warning, problem],
            unreadable={"c.yaml"},
            seen={"y": "c" * 40},
        )
    )
    assert [f.uid for f in plan.flows] == ["demo.a"]  # demo.c is unreadable at head, so not "removed"
    assert plan.flows[0].restores == "c" * 40
    assert not plan.valid and plan.errors == [problem] and plan.warnings == [warning]
    data = plan.as_dict()
    assert data["errors"] == [
        {"file": "c.yaml", "line": 3, "column": 1, "message": "bad", "flow": "demo.c", "where": ""}
    ]
    assert list(data) == [
        "base",
        "head",
        "path",
        "namespace_prefix",
        "valid",
        "unrelated_histories",
        "generated_at",
        "errors",
        "warnings",
        "base_errors",
        "flows",
        "triggers",
        "flow_changes",
        "trigger_changes",
        "namespace_files",
        "namespace_file_changes",
        "notes",
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(1, 1, [], id="equal"),
        pytest.param({"a": 1}, {"a": 2}, [("a", 1, 2)], id="scalar"),
        pytest.param(
            {"a": {"b": [{"c": 0}, {"c": 1}]}}, {"a": {"b": [{"c": 0}, {"c": 2}]}}, [("a.b[1].c", 1, 2)], id="nested"
        ),
        pytest.param({"a": ["x", "y"]}, {"a": ["x", "z"]}, [("a", ["x", "y"], ["x", "z"])], id="scalar list"),
        pytest.param({"a": [1]}, {"a": [1, 2]}, [("a", [1], [1, 2])], id="list length"),
        pytest.param({"a": 1}, {"b": 1}, [("a", 1, None), ("b", None, 1)], id="key moved"),
    ],
)
def test_diff_values(old: Any, new: Any, expected: list[tuple[str, Any, Any]]) -> None:
    assert [(c.path, c.old, c.new) for c in diff_values(old, new)] == expected


# ---------------------------------------------------------------------------------------------------------------
# renderers


def big_plan(flows: int) -> Plan:
    changes = tuple(
        FlowPlan(
            f"demo.flow{i:05}",
            "changed",
            f"demo/flow{i:05}.yaml",
            properties=tuple(PropertyChange(f"variables.v{j}", "x" * 30, "y" * 30) for j in range(5)),
        )
        for i in range(flows)
    )
    return Plan("b" * 40, "h" * 40, NOW, flows=changes)


def test_markdown_is_truncated_to_fit_a_comment() -> None:
    text = render_markdown(big_plan(2000))
    assert len(text) <= 65_536
    assert "more characters" in text and "left out" in text
    assert text.count("<details>") == text.count("</details>")
    assert text.startswith("### gitsync plan `bbbbbbb` → `hhhhhhh`")


def test_markdown_small_plan_is_whole() -> None:
    text = render_markdown(big_plan(3))
    assert "left out" not in text
    assert "| ✏️ changed | `demo.flow00000` | `demo/flow00000.yaml` | 5 flow properties changed |" in text
    assert "- `variables.v0`: " in text


def test_text_renderer_signs() -> None:
    plan = Plan(
        "b" * 40,
        "h" * 40,
        NOW,
        flows=(
            FlowPlan("demo.a", "added", "a.yaml"),
            FlowPlan("demo.b", "changed", "b.yaml", properties=(PropertyChange("labels.team", "x", "y"),)),
            FlowPlan("demo.c", "removed", None, "c.yaml"),
        ),
    )
    assert render_text(plan).splitlines()[1:] == [
        "+ flow demo.a (a.yaml)",
        "~ flow demo.b (b.yaml)",
        '    ~ labels.team: "x" -> "y"',
        "- flow demo.c (c.yaml)",
    ]


def test_revert_inside_a_flows_folder_names_the_introducing_commit(repo: Repo) -> None:
    first = repo.commit({"flows/demo/hello.yaml": flow("hello"), "README.md": "docs"})
    repo.commit({"README.md": "more docs"})  # history that does not touch the flow
    base = repo.commit({"flows/demo/hello.yaml": flow("hello", "v2")})
    repo.git("revert", "--no-edit", base)
    head = repo.git("rev-parse", "HEAD")
    _, data = plan_cli(repo, base, head, "--path", "flows")
    assert data["flows"]["changed"] == ["demo.hello"]
    assert data["flow_changes"][0]["restores"] == first
