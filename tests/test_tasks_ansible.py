"""AnsibleCLI runs real playbooks (ansible-core, the `gitsync[ansible]` extra) against localhost with the local
connection, through `gitsync run` as a user runs a flow: the files it writes, its outputs as Kestra shapes them,
EXPLICIT outputs, a failing play, and the message when Ansible is not installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from runtime import python_without_extras, run_outputs, stored_file

Done = subprocess.CompletedProcess[str]
PLAYBOOK = """\
---
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Write a file
      ansible.builtin.copy:
        content: "hello from ansible\\n"
        dest: "{% raw %}{{ playbook_dir }}{% endraw %}/greeting.txt"
    - name: Say hello
      ansible.builtin.debug:
        msg: "Hello, {{ inputs.who }}!"
    - name: Declare what the flow may see
      kestra:
        outputs:
          greeted: "{{ inputs.who }}"
"""
SECOND = """\
---
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Second playbook
      ansible.builtin.debug:
        msg: second
"""


def flow_file(tmp_path: Path, playbook: str, extra: str = "", commands: str = "") -> Path:
    def block(text: str) -> str:
        return "".join(f"        {line}\n" for line in text.splitlines())

    path = tmp_path / "ansible.yaml"
    path.write_text(
        "id: ansible_local\nnamespace: company.team\n"
        "inputs:\n  - id: who\n    type: STRING\n    defaults: World\n"
        "tasks:\n  - id: ansible\n    type: io.kestra.plugin.ansible.cli.AnsibleCLI\n"
        f"    inputFiles:\n      playbook.yml: |\n{block(playbook)}      second.yml: |\n{block(SECOND)}"
        "    outputFiles: [greeting.txt]\n"
        f"{extra}"
        "    commands:\n      - ansible-playbook -i localhost -c local playbook.yml\n"
        f"{commands}"
        'outputs:\n  - id: vars\n    type: JSON\n    value: "{{ outputs.ansible.vars }}"\n'
        '  - id: files\n    type: JSON\n    value: "{{ outputs.ansible.outputFiles }}"\n',
        encoding="utf-8",
    )
    return path


def run(path: Path, python: str = sys.executable, env: dict[str, str] | None = None) -> Done:
    return subprocess.run(
        [python, "-m", "gitsync", "run", "--file", str(path)],
        capture_output=True,
        text=True,
        cwd=path.parent,
        env=env,
        timeout=300,
    )


def statuses(vars_: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (task["name"], host["host"], host["status"])
        for playbook in vars_["playbooks"]
        for play in playbook["plays"]
        for task in play["tasks"]
        for host in task["hosts"]
    ]


def test_a_playbook_runs_on_localhost_and_its_results_are_the_outputs(tmp_path: Path) -> None:
    path = flow_file(
        tmp_path,
        PLAYBOOK,
        extra="    outputLogFile: true\n",
        commands="      - ansible-playbook -i localhost -c local second.yml\n",
    )
    done = run(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "changed: [localhost] Write a file" in done.stdout
    assert 'ok: [localhost] Say hello: "Hello, World!"' in done.stdout
    outputs = run_outputs(done)
    state = (str(tmp_path / "gitsync.db"), str(tmp_path / ".gitsync"))
    assert stored_file(state, outputs["files"]["greeting.txt"]).read_text() == "hello from ansible\n"
    assert "Say hello" in stored_file(state, outputs["files"]["log"]).read_text()
    results = outputs["vars"]["outputs"]
    assert [r.get("msg") for r in results] == [None, "Hello, World!", None, "second"]  # both commands, merged
    assert results[0]["changed"] is True and results[0]["dest"].endswith("/greeting.txt")
    assert results[2]["outputs"] == {"greeted": "World"}
    assert statuses(outputs["vars"]) == [
        ("Write a file", "localhost", "changed"),
        ("Say hello", "localhost", "ok"),
        ("Declare what the flow may see", "localhost", "ok"),
        ("Second playbook", "localhost", "ok"),
    ]


def test_explicit_outputs_keep_only_what_the_playbook_declares(tmp_path: Path) -> None:
    path = flow_file(tmp_path, PLAYBOOK, extra="    outputsMode: EXPLICIT\n")
    done = run(path)
    assert done.returncode == 0, done.stdout + done.stderr
    outputs = run_outputs(done)
    assert outputs["vars"]["outputs"] == {"greeted": "World"}
    hosts = [h for p in outputs["vars"]["playbooks"] for pl in p["plays"] for t in pl["tasks"] for h in t["hosts"]]
    assert [h["result"] for h in hosts] == [{"changed": True}, {"changed": False}, {"changed": False}]
    assert "Hello, World!" not in done.stdout  # results are redacted from the log too
    assert "ok: [localhost] Say hello\n" in done.stdout


def test_a_failing_play_fails_the_task_with_ansibles_message(tmp_path: Path) -> None:
    failing = (
        "---\n- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: Check the disk\n      ansible.builtin.fail:\n        msg: the disk is full\n"
    )
    done = run(flow_file(tmp_path, failing))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "failed: [localhost] Check the disk: the disk is full" in done.stdout
    assert "FAIL ansible" in done.stdout
    assert "command failed with exit code 2" in done.stdout


def test_without_ansible_the_run_names_the_pip_install(tmp_path: Path) -> None:
    python = python_without_extras(tmp_path)
    done = run(flow_file(tmp_path, PLAYBOOK), str(python), {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 1
    assert "ansible-playbook is not installed where gitsync runs tasks" in done.stdout
    assert "pip install 'gitsync[ansible]'" in done.stdout
