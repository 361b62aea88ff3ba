"""Issue 9, class 1: data is never rendered as a template.

A value that comes from outside the flow's own YAML (inputs, webhook bodies, task outputs, kv values) holding
`{{ secret('X') }}` must come back as that literal text, and the secret's value must appear nowhere: not in the
command's output, the API's answers, the logs, the task runs, nor in any byte of the SQLite files (main file and
WAL) or the data directory. Attacks go through `gitsync run --file` (a real subprocess) and through the Webhook
trigger route of a real daemon subprocess.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from daemon_harness import daemon_env, running_daemon
from gitservers import GitRepo

SECRET_VALUE = "s3cr3t-class1-7f1d9a"
SECRET_ENV = {"SECRET_X": base64.b64encode(SECRET_VALUE.encode()).decode()}
ATTACK = "{{ secret('X') }}"
ATTACK_BLOCK = "{% if true %}{{ secret('X') }}{% endif %}"
API_TOKEN = "api-token-class1"

FLOW = textwrap.dedent(
    """\
    id: leak
    namespace: acme
    inputs:
      - id: items
        type: JSON
      - id: word
        type: STRING
    tasks:
      - id: each
        type: io.kestra.plugin.core.flow.ForEach
        values: "{{ inputs.items }}"
        tasks:
          - id: show
            type: io.kestra.plugin.core.debug.Return
            format: "{{ taskrun.value }}"
      - id: seq
        type: io.kestra.plugin.core.flow.EachSequential
        value: "{{ inputs.items | toJson }}"
        tasks:
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: "item {{ taskrun.value }}"
      - id: par
        type: io.kestra.plugin.core.flow.EachParallel
        value: "{{ inputs.items }}"
        tasks:
          - id: show2
            type: io.kestra.plugin.core.debug.Return
            format: "{{ taskrun.value }}"
      - id: out
        type: io.kestra.plugin.core.output.OutputValues
        values:
          list: "{{ inputs.items }}"
      - id: fromoutputs
        type: io.kestra.plugin.core.flow.ForEach
        values: "{{ outputs.out.values.list }}"
        tasks:
          - id: show3
            type: io.kestra.plugin.core.debug.Return
            format: "{{ taskrun.value }}"
      - id: put
        type: io.kestra.plugin.core.kv.Set
        key: items
        value: "{{ inputs.items }}"
      - id: fromkv
        type: io.kestra.plugin.core.flow.ForEach
        values: "{{ kv('items') }}"
        tasks:
          - id: show4
            type: io.kestra.plugin.core.debug.Return
            format: "{{ taskrun.value }}"
      - id: switch
        type: io.kestra.plugin.core.flow.Switch
        value: "{{ inputs.word }}"
        cases:
          nope:
            - id: never
              type: io.kestra.plugin.core.debug.Return
              format: never
        defaults:
          - id: word
            type: io.kestra.plugin.core.debug.Return
            format: "{{ inputs.word }}"
    outputs:
      - id: echoed
        type: JSON
        value: "{{ inputs.items }}"
    """
)


def _all_bytes(root: Path) -> bytes:
    """Every byte of every file under `root` (SQLite main files, -wal, -shm, execution files, logs)."""
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def _gitsync(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitsync", *args, "--db", str(tmp_path / "state.db"), "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=120,
        env=daemon_env(SECRET_ENV),
    )


def test_run_file_keeps_data_holding_expressions_literal(tmp_path: Path) -> None:
    flow = tmp_path / "leak.yaml"
    flow.write_text(FLOW, encoding="utf-8")
    items = json.dumps([ATTACK, ATTACK_BLOCK, "plain"])
    done = _gitsync(tmp_path, "run", "--file", str(flow), "--input", f"items={items}", "--input", f"word={ATTACK}")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    listing = _gitsync(tmp_path, "executions", "--flow", "acme.leak", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    (execution,) = json.loads(listing.stdout)
    logs = _gitsync(tmp_path, "logs", execution["id"])
    seen = output + listing.stdout + listing.stderr + logs.stdout + logs.stderr
    assert SECRET_VALUE not in seen
    assert SECRET_VALUE.encode() not in _all_bytes(tmp_path)
    assert execution["state"] == "SUCCESS"
    assert execution["outputs"] == {"echoed": [ATTACK, ATTACK_BLOCK, "plain"]}
    values = [t.get("value") for t in execution["task_runs"] if t["task_id"] in ("show", "show2", "show3", "show4")]
    assert values.count(ATTACK) == 4 and values.count(ATTACK_BLOCK) == 4, values
    runs = json.dumps(execution["task_runs"])
    assert json.dumps({"value": ATTACK})[1:-1] in runs
    assert f"item {ATTACK}" in logs.stdout
    assert "*****" not in seen  # nothing was evaluated, so nothing had to be masked


def test_a_literal_yaml_list_is_still_rendered(tmp_path: Path) -> None:
    flow = tmp_path / "own.yaml"
    flow.write_text(
        textwrap.dedent(
            """\
            id: own
            namespace: acme
            inputs:
              - id: who
                type: STRING
            tasks:
              - id: each
                type: io.kestra.plugin.core.flow.ForEach
                values: ["{{ inputs.who | upper }}", "b"]
                tasks:
                  - id: show
                    type: io.kestra.plugin.core.debug.Return
                    format: "{{ taskrun.value }}"
            """
        ),
        encoding="utf-8",
    )
    done = _gitsync(tmp_path, "run", "--file", str(flow), "--input", f"who=ada {ATTACK}")
    assert done.returncode == 0, done.stdout + done.stderr
    listing = _gitsync(tmp_path, "executions", "--flow", "acme.own", "--format", "json")
    (execution,) = json.loads(listing.stdout)
    values = sorted(t["value"] for t in execution["task_runs"] if t["task_id"] == "show")
    assert values == sorted([f"ADA {ATTACK}".upper(), "b"])
    assert SECRET_VALUE.encode() not in _all_bytes(tmp_path)


WEBHOOK_FLOW = textwrap.dedent(
    """\
    id: hook
    namespace: acme.demo
    inputs:
      - id: items
        type: JSON
        defaults: []
    tasks:
      - id: body
        type: io.kestra.plugin.core.flow.ForEach
        values: "{{ trigger.body.items }}"
        tasks:
          - id: show
            type: io.kestra.plugin.core.debug.Return
            format: "{{ taskrun.value }}"
      - id: header
        type: io.kestra.plugin.core.flow.ForEach
        values: "{{ trigger.headers['x-items'] }}"
        tasks:
          - id: show2
            type: io.kestra.plugin.core.debug.Return
            format: "{{ taskrun.value }}"
      - id: viainput
        type: io.kestra.plugin.core.flow.ForEach
        values: "{{ inputs.items }}"
        tasks:
          - id: show3
            type: io.kestra.plugin.core.log.Log
            message: "{{ taskrun.value }}"
    triggers:
      - id: web
        type: io.kestra.plugin.core.trigger.Webhook
        key: the-only-thing-the-caller-knows
        inputs:
          items: "{{ trigger.body.items | toJson }}"
    """
)


def test_a_webhook_body_never_gets_evaluated(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"flows/hook.yaml": WEBHOOK_FLOW})
    source = {"name": "main", "repo": str(repo.path), "branch": "main", "path": "flows", "poll": "1h"}
    env = {**SECRET_ENV, "GITSYNC_API_TOKEN": API_TOKEN}
    with running_daemon(tmp_path / "daemon", [source], env=env) as daemon:
        daemon.wait_for(lambda: "acme.demo.hook" in daemon.flow_uids(), "the flow is applied")
        answer = daemon.post(
            "/api/v1/executions/webhook/acme.demo/hook/the-only-thing-the-caller-knows",
            json={"items": [ATTACK, ATTACK_BLOCK]},
            headers={"x-items": json.dumps([ATTACK])},
        )
        assert answer.status_code == 200, answer.text
        execution_id = answer.json()["id"]

        def ended() -> bool:
            rows = daemon.query("SELECT state FROM executions WHERE id = ?", (execution_id,))
            return bool(rows) and rows[0]["state"] in ("SUCCESS", "FAILED", "WARNING", "KILLED")

        daemon.wait_for(ended, "the webhook's execution ends")
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        shown = daemon.get(f"/api/v1/executions/{execution_id}", headers=auth)
        listed = daemon.get("/api/v1/executions", headers=auth)
        assert shown.status_code == 200, shown.text
        execution = shown.json()
        answers = answer.text + shown.text + listed.text
        assert execution["state"] == "SUCCESS", answers
        runs = daemon.query("SELECT * FROM task_runs WHERE execution_id = ?", (execution_id,))
        values = [r["value"] for r in runs if r["task_id"] in ("show", "show2", "show3")]
        assert values.count(ATTACK) == 3 and values.count(ATTACK_BLOCK) == 2, values
        assert SECRET_VALUE not in answers
        assert SECRET_VALUE not in json.dumps(runs, default=str)
    assert SECRET_VALUE not in daemon.log_path.read_text(encoding="utf-8", errors="replace")
    assert SECRET_VALUE.encode() not in _all_bytes(tmp_path / "daemon")
