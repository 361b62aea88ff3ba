"""Issue 9, class 2: a secret never reaches storage or an answer, in clear or in a common encoding.

Attacked as a careless flow author would, through real processes: `gitsync run` (a subprocess) and `gitsync
daemon` (a subprocess, its HTTP API and the fake GitHub of tests/hostserver.py as the status API). The flow writes
a secret (from a SECRET_* variable) and a SECRET input into labels, Subflow inputs, a Switch value, ForEach
values, task outputs and logs: base64 (at each offset inside a longer text, standard and URL-safe), upper and
lower case, reversed, URL-encoded, JSON-escaped, and split over two log lines. Every byte of command output, API
answers, commit statuses and of the SQLite files (.db and -wal) and the data folder is searched for each form.
The flow still uses both values while it runs (hashes of them are printed, a child flow compares them).
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import urllib.parse
from pathlib import Path

import pytest
from daemon_harness import running_daemon
from gitservers import GitRepo
from hostserver import host_server
from runtime import deployed_state, gitsync_cli

SECRET = 'Zq8-hunter2/Se"cret+Value_42'
PASSWORD = "input-only-P4ssw0rd/x+y"
API_TOKEN = "api-token-for-secret-tests"
STATUS_TOKEN_ENV, STATUS_TOKEN = "GITSYNC_TEST_STATUS_TOKEN", "status-token-for-secret-tests"

SHELL = """
  - id: shell
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    env:
      S: "{{ secret('TOPSECRET') }}"
      P: "{{ inputs.password }}"
    commands:
      - printf '%s' "$S" | sha256sum | cut -c1-64 | sed 's/^/sha-s /'
      - printf '%s' "$P" | sha256sum | cut -c1-64 | sed 's/^/sha-p /'
      - printf '%s' "$S" | base64 -w0; echo
      - printf 'x%s' "$S" | base64 -w0; echo
      - printf 'xy%s!' "$S" | base64 -w0; echo
      - printf '%s' "$P" | base64 -w0; echo
      - printf 'x%s' "$S" | base64 -w0 | tr '+/' '-_'; echo
      - printf '%s' "$S" | tr a-z A-Z; echo
      - printf '%s' "$S" | tr A-Z a-z; echo
      - printf '%s' "$S" | rev; echo
      - printf '%s' "$P" | rev; echo
      - |
        python3 -c 'import os, urllib.parse as u; print(u.quote(os.environ["S"], safe=""))'
      - |
        python3 -c 'import os, urllib.parse as u; print(u.quote_plus(os.environ["S"]))'
      - |
        python3 -c 'import os, json; print(json.dumps({"k": os.environ["S"], "p": os.environ["P"]}))'
      - |
        python3 -c 'import os; s = os.environ["S"]; print("start " + s[:11]); print(s[11:] + " end")'
      - |
        python3 -c 'import os; s = os.environ["P"]; print("start " + s[:5]); print(s[5:] + " end")'
"""

FLOWS = {
    "child.yaml": """
        id: child
        namespace: acme
        inputs:
          - id: given
            type: STRING
          - id: pw
            type: SECRET
        tasks:
          - id: compare
            type: io.kestra.plugin.core.debug.Return
            format: "{{ inputs.given == secret('TOPSECRET') }} {{ inputs.pw | length }}"
          - id: echo
            type: io.kestra.plugin.core.log.Log
            message: "child has {{ inputs.given }} and {{ inputs.pw }}"
        outputs:
          - id: verdict
            type: STRING
            value: "{{ outputs.compare.value }}"
    """,
    "leak.yaml": """
        id: leak
        namespace: acme
        inputs:
          - id: password
            type: SECRET
        tasks:
          - id: label
            type: io.kestra.plugin.core.execution.Labels
            labels:
              token: "{{ secret('TOPSECRET') }}"
              pw: "{{ inputs.password }}"
          - id: switch
            type: io.kestra.plugin.core.flow.Switch
            value: "{{ secret('TOPSECRET') }}"
            cases:
              other:
                - id: never
                  type: io.kestra.plugin.core.debug.Return
                  format: never
            defaults:
              - id: fallback
                type: io.kestra.plugin.core.debug.Return
                format: fallback
          - id: each
            type: io.kestra.plugin.core.flow.ForEach
            values: ["{{ secret('TOPSECRET') }}", "{{ inputs.password }}", "plain"]
            tasks:
              - id: inner
                type: io.kestra.plugin.core.debug.Return
                format: "{{ taskrun.value }}"
          - id: call
            type: io.kestra.plugin.core.flow.Subflow
            namespace: acme
            flowId: child
            wait: true
            inputs:
              given: "{{ secret('TOPSECRET') }}"
              pw: "{{ inputs.password }}"
          - id: encoded
            type: io.kestra.plugin.core.debug.Return
            format: >-
              {{ secret('TOPSECRET') | base64encode }} {{ secret('TOPSECRET') | upper }}
              {{ secret('TOPSECRET') | urlencode }} {{ inputs.password | base64encode }}
              {{ {'k': secret('TOPSECRET')} | toJson }}
"""
    + "\n".join("        " + line for line in SHELL.strip("\n").splitlines())
    + """
        outputs:
          - id: child
            type: STRING
            value: "{{ outputs.call.outputs.verdict }}"
          - id: raw
            type: STRING
            value: "{{ inputs.password }} {{ secret('TOPSECRET') }}"
    """,
    "fails.yaml": """
        id: fails
        namespace: acme
        tasks:
          - id: boom
            type: io.kestra.plugin.core.execution.Fail
            errorMessage: "bad {{ secret('TOPSECRET') | base64encode }} and {{ secret('TOPSECRET') | upper }}"
    """,
}


def forms(value: str) -> list[str]:
    """The clear value and the encodings a task commonly writes (computed here, not by the masker)."""
    out = [value, value.upper(), value.lower(), value[::-1], urllib.parse.quote(value, safe="")]
    out += [urllib.parse.quote_plus(value), json.dumps(value)[1:-1]]
    for prefix in ("", "x", "xy"):
        encoded = base64.b64encode((prefix + value + "!").encode()).decode()
        middle = encoded[4:-8]  # what encodes the value whatever is around it
        out += [middle, middle.replace("+", "-").replace("/", "_")]
    half = len(value) // 2
    out += [value[: half + 2], value[half - 2 :]]  # either half of a split line
    return out


def assert_nowhere(haystacks: dict[str, bytes]) -> None:
    for needle in forms(SECRET) + forms(PASSWORD):
        for where, data in haystacks.items():
            assert needle.encode() not in data, f"{needle!r} found in {where}"


def stored_bytes(*roots: Path) -> dict[str, bytes]:
    """Every file of the state: the SQLite files (.db, -wal, -shm) and the data folder (kv.db, execution files)."""
    out: dict[str, bytes] = {}
    for root in roots:
        paths = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in paths:
            out[str(path)] = path.read_bytes()
        for suffix in ("-wal", "-shm", "-journal"):
            sibling = Path(str(root) + suffix)
            if sibling.is_file():
                out[str(sibling)] = sibling.read_bytes()
    return out


def env_with_secret() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITSYNC_", "SECRET_"))}
    env["SECRET_TOPSECRET"] = base64.b64encode(SECRET.encode()).decode()
    return env


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.fixture
def deployed(tmp_path: Path) -> tuple[str, str]:
    return deployed_state(tmp_path, FLOWS)


def gitsync(state: tuple[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return gitsync_cli(state, *args, env=env_with_secret(), timeout=180)


def test_gitsync_run_stores_and_prints_no_secret_in_any_form(deployed: tuple[str, str], tmp_path: Path) -> None:
    run = gitsync(deployed, "run", "acme.leak", "--input", f"password={PASSWORD}")
    assert run.returncode == 0, run.stdout + run.stderr
    # the flow used both values in clear while it ran
    assert f"sha-s {sha(SECRET)}" in run.stdout and f"sha-p {sha(PASSWORD)}" in run.stdout
    listed = gitsync(deployed, "executions", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    parent = next(row for row in rows if row["flow"] == "acme.leak")
    child = next(row for row in rows if row["flow"] == "acme.child")
    assert parent["state"] == child["state"] == "SUCCESS"
    assert parent["outputs"]["child"] == f"true {len(PASSWORD)}"  # the child got both in clear
    assert parent["inputs"]["password"] == "******" and child["inputs"]["pw"] == "******"
    logs = gitsync(deployed, "logs", parent["id"])
    child_logs = gitsync(deployed, "logs", child["id"])
    assert "start ******" in logs.stdout and "****** end" in logs.stdout
    db, data = deployed
    assert_nowhere(
        {
            "run output": (run.stdout + run.stderr).encode(),
            "executions": listed.stdout.encode(),
            "logs": (logs.stdout + child_logs.stdout).encode(),
            **stored_bytes(Path(db), Path(data)),
        }
    )


def test_a_secret_input_is_not_kept_for_another_process(
    deployed: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the creating process holds a SECRET input: an execution another process must run fails and says why."""
    monkeypatch.setenv("SECRET_TOPSECRET", env_with_secret()["SECRET_TOPSECRET"])
    from gitsync.compose import build_runs, load_registry
    from gitsync.config import load_settings
    from gitsync.state.database import Store

    db, data = deployed
    settings = load_settings(None, {"db": db, "data_dir": data})
    store = Store(db)
    try:
        execution_id = build_runs(store, settings, load_registry()).create("acme.leak", {"password": PASSWORD})
        other = build_runs(store, settings, load_registry())  # a second process: nothing in memory
        outcome = other.run(execution_id)
        assert outcome is not None and outcome.state.value == "FAILED"
        assert outcome.error is not None and "SECRET input 'password'" in outcome.error
        assert other.execution_state(execution_id) == "FAILED"
    finally:
        store.close()
    assert_nowhere(stored_bytes(Path(db)))


def test_daemon_api_logs_statuses_and_database_hold_no_secret(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    import textwrap

    commit = repo.commit({f"flows/{name}": textwrap.dedent(text) for name, text in FLOWS.items()})
    with host_server("github", "acme/flows", STATUS_TOKEN) as github:
        source = {
            "name": "main",
            "repo": str(repo.path),
            "branch": "main",
            "path": "flows",
            "poll": "1h",
            "status": {
                "provider": "github",
                "repository": "acme/flows",
                "token_env": STATUS_TOKEN_ENV,
                "api_url": github.api_url,
            },
        }
        env = {**env_with_secret(), "GITSYNC_API_TOKEN": API_TOKEN, STATUS_TOKEN_ENV: STATUS_TOKEN}
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        with running_daemon(tmp_path / "daemon", [source], env=env) as daemon:
            daemon.wait_for(lambda: "acme.leak" in daemon.flow_uids(), "the flows are applied")
            ids = []
            for flow, body in (("leak", {"password": PASSWORD}), ("fails", {})):
                answer = daemon.post(f"/api/v1/executions/acme/{flow}", json=body, headers=auth)
                assert answer.status_code == 201, answer.text
                ids.append(str(answer.json()["id"]))

            def ended() -> bool:
                rows = daemon.query("SELECT id, state FROM executions")
                return len(rows) >= 3 and all(r["state"] in ("SUCCESS", "FAILED") for r in rows)

            daemon.wait_for(ended, "the executions end", 120)
            daemon.wait_for(
                lambda: any(
                    s.get("context") == "gitsync/acme.fails" and s["state"] == "failure" for s in github.statuses
                ),
                "the failure status arrives",
                60,
            )
            states = {r["id"]: r["state"] for r in daemon.query("SELECT id, state FROM executions")}
            assert states[ids[0]] == "SUCCESS" and states[ids[1]] == "FAILED"
            answers = [daemon.get("/api/v1/executions", headers=auth).text]
            for execution_id in ids:
                answers.append(daemon.get(f"/api/v1/executions/{execution_id}", headers=auth).text)
            failure = next(
                s for s in github.statuses if s.get("context") == "gitsync/acme.fails" and s["state"] == "failure"
            )
            assert "******" in failure["description"]
            logs = "\n".join(r["message"] for r in daemon.query("SELECT message FROM logs"))
            assert f"sha-s {sha(SECRET)}" in logs and f"sha-p {sha(PASSWORD)}" in logs
            haystacks = {
                "api": "\n".join(answers).encode(),
                "statuses": json.dumps(list(github.statuses)).encode(),
                **stored_bytes(daemon.db, daemon.data_dir),
            }
        haystacks["daemon log"] = daemon.log_path.read_bytes()
        haystacks.update(stored_bytes(daemon.db))
    assert commit
    assert_nowhere(haystacks)


def test_the_masker_masks_every_form_inside_other_text() -> None:
    from runner.masking import MASK, Masker

    masker = Masker([SECRET])
    for form in forms(SECRET)[:7]:  # the whole forms (the rest are fragments, for searching)
        assert form not in masker.mask(f"before {form} after"), form
    for prefix in ("", "x", "xy", "xyz"):
        for suffix in ("", "a", "ab"):
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                text = encode((prefix + SECRET + suffix).encode()).decode()
                assert MASK in masker.mask(text) and text not in masker.mask(text)


def test_a_secret_split_over_two_log_lines_is_masked_on_both() -> None:
    from runner.masking import MASK, LineMasker, Masker

    masker = Masker([SECRET])
    for cut in range(1, len(SECRET)):
        out: list[str] = []
        lines = LineMasker(masker, lambda level, text, out=out: out.append(text))
        lines.feed("INFO", "start " + SECRET[:cut])
        lines.feed("INFO", SECRET[cut:] + " end")
        lines.feed("INFO", "plain line")
        lines.flush()
        assert out == ["start " + MASK, MASK + " end", "plain line"], cut
    held: list[str] = []
    lines = LineMasker(masker, lambda level, text: held.append(text))
    lines.feed("INFO", "ends with " + SECRET[:4])
    assert held == []  # waits for the next line
    lines.flush()
    assert held == ["ends with " + SECRET[:4]]  # not a secret after all


def test_a_short_secret_input_is_stored_masked_too(deployed: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from gitsync.compose import build_runs, load_registry
    from gitsync.config import load_settings
    from gitsync.state.database import Store

    monkeypatch.setenv("SECRET_TOPSECRET", env_with_secret()["SECRET_TOPSECRET"])
    db, data = deployed
    store = Store(db)
    try:
        runs = build_runs(store, load_settings(None, {"db": db, "data_dir": data}), load_registry())
        execution_id = runs.create("acme.child", {"given": "x", "pw": "q7"})
        row = store.query_one("SELECT inputs FROM executions WHERE id = ?", (execution_id,))
        assert row is not None and json.loads(row["inputs"])["pw"] == "******"
        outcome = runs.run(execution_id)
        assert outcome is not None and outcome.outputs["verdict"] == "false 2"  # the flow had the clear value
    finally:
        store.close()
