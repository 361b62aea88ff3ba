"""The read commands as a user meets them: `history` and `syncs` of real state, every subcommand's `--help`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from gitservers import GitRepo
from runtime import deployed_state, gitsync_cli

from gitsync.cli.main import build_parser, main

FLOW = """\
id: {id}
namespace: acme
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: hello
"""


def broken(flow_id: str) -> str:
    """A flow with one unknown property: one located error per file."""
    return FLOW.format(id=flow_id).replace("message: hello", "mesage: hello")


# -- history --------------------------------------------------------------------------------------------------


def test_history_of_an_unknown_flow_is_a_usage_error_naming_a_close_flow(tmp_path: Path) -> None:
    state = deployed_state(tmp_path, {"hello.yaml": FLOW.format(id="hello")})
    for fmt in ("text", "json"):
        done = gitsync_cli(state, "history", "acme.helo", "--format", fmt)
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        assert "gitsync history: no flow 'acme.helo' in the state" in done.stderr
        assert "Did you mean 'acme.hello'?" in done.stderr
        assert "`gitsync flows` lists the flows" in done.stderr
    far = gitsync_cli(state, "history", "other.thing")
    assert far.returncode == 2 and "no flow 'other.thing'" in far.stderr and "Did you mean" not in far.stderr
    known = gitsync_cli(state, "history", "acme.hello")
    assert known.returncode == 0 and "REVISION" in known.stdout


# -- syncs ----------------------------------------------------------------------------------------------------


def synced_state(tmp_path: Path) -> tuple[tuple[str, str], str]:
    """A state whose second sync is invalid with four errors, each message longer than a table cell."""
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"flows/hello.yaml": FLOW.format(id="hello")})
    state = (str(tmp_path / "state.db"), str(tmp_path / "data"))
    sync = ("sync", "--repo", str(repo.path), "--path", "flows")
    assert gitsync_cli(state, *sync).returncode == 0
    names = ["a_flow_with_a_rather_long_identifier", "b_flow", "c_flow", "d_flow"]
    repo.commit({f"flows/{name}.yaml": broken(name) for name in names})
    assert gitsync_cli(state, *sync).returncode == 1
    return state, names[0]


def test_the_syncs_listing_says_how_to_see_every_error(tmp_path: Path) -> None:
    state, _ = synced_state(tmp_path)
    listing = gitsync_cli(state, "syncs")
    assert listing.returncode == 0, listing.stderr
    invalid = next(line for line in listing.stdout.splitlines() if " invalid " in line)
    assert invalid.rstrip().endswith("(+3 more: gitsync syncs 2)"), invalid


def test_syncs_id_prints_one_sync_with_every_error_in_full(tmp_path: Path) -> None:
    state, first = synced_state(tmp_path)
    done = gitsync_cli(state, "syncs", "2")
    assert done.returncode == 0, done.stderr
    expected = [
        f"flows/{name}.yaml:6:5: flow 'acme.{name}': tasks[0].mesage: unknown property"
        for name in (first, "b_flow", "c_flow", "d_flow")
    ]
    lines = done.stdout.splitlines()
    for error in expected:
        assert any(line.strip().startswith(error) for line in lines), (error, done.stdout)
    assert "outcome: invalid" in done.stdout and "errors (4):" in done.stdout

    as_json = gitsync_cli(state, "syncs", "2", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    row = json.loads(as_json.stdout)
    assert (row["id"], row["outcome"], row["source"]) == (2, "invalid", "repo")
    assert [e["file"] for e in row["errors"]] == [f"flows/{n}.yaml" for n in (first, "b_flow", "c_flow", "d_flow")]


def test_syncs_of_an_unknown_id_is_a_usage_error(tmp_path: Path) -> None:
    state, _ = synced_state(tmp_path)
    done = gitsync_cli(state, "syncs", "99")
    assert done.returncode == 2
    assert "gitsync syncs: no sync 99 in the state" in done.stderr and "`gitsync syncs` lists them" in done.stderr


# -- --help ---------------------------------------------------------------------------------------------------


def subcommands() -> list[str]:
    (action,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(action.choices)


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_explains_itself_in_its_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    # argparse prints the usage, a blank line, then the description (when there is one) before the options
    first = out.split("\n\n", 1)[1].lstrip("\n").splitlines()[0]
    assert not first.startswith(("positional arguments", "options")), out
    assert len(first.split()) >= 5, first
