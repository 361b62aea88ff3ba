"""io.kestra.plugin.fs.ssh.Command against Debian's OpenSSH server on 127.0.0.1 (tests/sshd_server.py): flows run by
`gitsync run`, logging in by password and by key, checking the host key, streaming output, failing on exit codes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runtime import deployed_state, gitsync_cli, python_hiding, run_outputs
from sshd_server import SshServer

Done = subprocess.CompletedProcess[str]


def secrets_env(**values: str) -> dict[str, str]:
    """The process environment with SECRET_<NAME> variables (base64, as Kestra's open-source edition reads them)."""
    env = dict(os.environ)
    env.update({f"SECRET_{k}": base64.b64encode(v.encode()).decode() for k, v in values.items()})
    return env


def run_flow(tmp_path: Path, tasks: str, env: dict[str, str], outputs: str = "") -> Done:
    text = f"id: remote\nnamespace: acme.ssh\ntasks:\n{tasks}\n" + (f"outputs:\n{outputs}\n" if outputs else "")
    state = deployed_state(tmp_path, {"remote.yaml": text})
    return gitsync_cli(state, "run", "acme.ssh.remote", env=env)


def command(sshd: SshServer, commands: list[str], auth: str = "password", extra: str = "") -> str:
    lines = [
        "  - id: cmd",
        "    type: io.kestra.plugin.fs.ssh.Command",
        f"    host: {sshd.host}",
        f'    port: "{sshd.port}"',
        f"    username: {sshd.user}",
    ]
    if auth == "password":
        lines += ["    authMethod: PASSWORD", "    password: \"{{ secret('SSH_PASSWORD') }}\""]
    else:
        lines += ["    authMethod: PUBLIC_KEY", "    privateKey: \"{{ secret('SSH_KEY') }}\""]
    lines.append("    commands:")
    lines += [f"      - {json.dumps(c)}" for c in commands]
    return "\n".join(lines) + ("\n" + extra if extra else "")


def output_flow(value: str) -> str:
    return f'  - id: result\n    type: STRING\n    value: "{{{{ {value} }}}}"'


def test_password_login_runs_the_commands_streams_their_lines_and_reads_their_outputs(
    sshd: SshServer, tmp_path: Path
) -> None:
    commands = [
        "echo first line",
        "echo to stderr >&2",
        "whoami",
        'echo \'::{"outputs": {"rows": 42, "name": "nightly"}}::\'',
        "echo last line",
    ]
    tasks = command(sshd, commands)
    done = run_flow(tmp_path, tasks, secrets_env(SSH_PASSWORD=sshd.password), output_flow("outputs.cmd.vars.rows"))
    assert done.returncode == 0, done.stdout + done.stderr
    shown = done.stdout + done.stderr
    for line in ("first line", "to stderr", sshd.user, "last line"):
        assert line in shown
    assert shown.index("first line") < shown.index("last line")
    assert '::{"outputs"' not in shown
    assert run_outputs(done) == {"result": "42"}
    assert sshd.password not in shown


def test_key_login_with_and_without_a_passphrase(sshd: SshServer, tmp_path: Path) -> None:
    done = run_flow(tmp_path / "plain", command(sshd, ["echo key works"], auth="key"),
                    secrets_env(SSH_KEY=sshd.private_key))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "key works" in done.stdout + done.stderr

    locked = command(
        sshd, ["echo locked key works"], auth="key", extra="    privateKeyPassphrase: \"{{ secret('PASS') }}\""
    )
    done = run_flow(tmp_path / "locked", locked, secrets_env(SSH_KEY=sshd.locked_key, PASS=sshd.passphrase))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "locked key works" in done.stdout + done.stderr

    done = run_flow(tmp_path / "nopass", command(sshd, ["echo never"], auth="key"),
                    secrets_env(SSH_KEY=sshd.locked_key))  # fmt: skip
    assert done.returncode != 0
    assert "protected by a passphrase" in done.stdout + done.stderr


def test_a_wrong_password_is_refused_in_words_and_stays_masked(sshd: SshServer, tmp_path: Path) -> None:
    done = run_flow(tmp_path, command(sshd, ["echo never"]), secrets_env(SSH_PASSWORD="not-the-password-123"))
    shown = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"refused the login of user '{sshd.user}' by password" in shown
    assert "never" not in shown.replace("echo never", "")
    assert "not-the-password-123" not in shown


def test_a_non_zero_exit_code_fails_the_task_with_its_last_stderr_lines(sshd: SshServer, tmp_path: Path) -> None:
    tasks = command(sshd, ["echo working", "echo disk is full >&2", "exit 3", "echo not reached"])
    done = run_flow(tmp_path, tasks, secrets_env(SSH_PASSWORD=sshd.password))
    shown = done.stdout + done.stderr
    assert done.returncode != 0
    assert "ended with exit code 3" in shown
    assert "disk is full" in shown
    assert "not reached" not in shown.replace("echo not reached", "")


def test_env_reaches_the_remote_commands(sshd: SshServer, tmp_path: Path) -> None:
    extra = "    env:\n      GITSYNC_GREETING: hello from the flow"
    tasks = command(sshd, ['echo "greeting=$GITSYNC_GREETING"'], extra=extra)
    done = run_flow(tmp_path, tasks, secrets_env(SSH_PASSWORD=sshd.password))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "greeting=hello from the flow" in done.stdout + done.stderr


def test_host_key_checking_accepts_the_right_key_and_refuses_a_wrong_or_unknown_one(
    sshd: SshServer, tmp_path: Path
) -> None:
    env = secrets_env(SSH_PASSWORD=sshd.password)

    def strict(known: str | None) -> str:
        extra = '    strictHostKeyChecking: "yes"'
        if known is not None:
            extra += "\n    knownHosts: |\n      " + known.strip()
        return command(sshd, ["echo host checked"], extra=extra)

    done = run_flow(tmp_path / "right", strict(sshd.known_hosts), env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "host checked" in done.stdout + done.stderr

    done = run_flow(tmp_path / "wrong", strict(sshd.wrong_known_hosts), env)
    shown = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"the host key of [{sshd.host}]:{sshd.port} is not the one knownHosts gives" in shown
    assert "host checked" not in shown.replace("echo host checked", "")

    # a wrong key is refused even without strict checking
    lax = command(sshd, ["echo host checked"], extra="    knownHosts: |\n      " + sshd.wrong_known_hosts.strip())
    done = run_flow(tmp_path / "lax", lax, env)
    assert done.returncode != 0
    assert "is not the one knownHosts gives" in done.stdout + done.stderr

    other = f"[{sshd.host}]:1 {sshd.host_public_key}"  # another port's entry: this server is unknown
    done = run_flow(tmp_path / "unknown", strict(other), env)
    shown = done.stdout + done.stderr
    assert done.returncode != 0
    assert "is not in knownHosts, and strictHostKeyChecking is yes" in shown
    assert sshd.host_public_key.split()[1] in shown  # the line to add, once checked


def test_without_strict_checking_the_unknown_key_is_logged_with_its_fingerprint(
    sshd: SshServer, tmp_path: Path
) -> None:
    done = run_flow(tmp_path, command(sshd, ["true"]), secrets_env(SSH_PASSWORD=sshd.password))
    assert done.returncode == 0, done.stdout + done.stderr
    shown = done.stdout + done.stderr
    assert (
        f"host key of [{sshd.host}]:{sshd.port} not checked (strictHostKeyChecking: no): ssh-ed25519 SHA256:" in shown
    )


def test_a_port_where_nothing_listens_and_a_missing_password_are_explained(tmp_path: Path) -> None:
    from services import free_port

    tasks = (
        "  - id: cmd\n    type: io.kestra.plugin.fs.ssh.Command\n    host: 127.0.0.1\n"
        f'    port: "{free_port()}"\n    username: nobody\n    password: x\n    commands: [ "true" ]'
    )
    done = run_flow(tmp_path / "closed", tasks, dict(os.environ))
    assert done.returncode != 0
    assert "nothing answers SSH on 127.0.0.1:" in done.stdout + done.stderr

    tasks = '  - id: cmd\n    type: io.kestra.plugin.fs.ssh.Command\n    host: 127.0.0.1\n    commands: [ "true" ]'
    done = run_flow(tmp_path / "nopw", tasks, dict(os.environ))
    assert done.returncode != 0
    assert "authMethod PASSWORD needs the password property" in done.stdout + done.stderr


@pytest.mark.parametrize("method", ["OPEN_SSH"])
def test_open_ssh_is_refused_with_what_to_use_instead(tmp_path: Path, method: str) -> None:
    tasks = (
        f"  - id: cmd\n    type: io.kestra.plugin.fs.ssh.Command\n    host: 127.0.0.1\n    authMethod: {method}\n"
        '    commands: [ "true" ]'
    )
    done = run_flow(tmp_path, tasks, dict(os.environ))
    assert done.returncode != 0
    assert "authMethod OPEN_SSH reads the SSH configuration of the machine gitsync runs on" in done.stdout + done.stderr


RELAY = """
import socket, sys, threading
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])))
print("relay " + sys.argv[1] + ":" + sys.argv[2], file=open(sys.argv[3], "a"))
def up():
    while data := sys.stdin.buffer.read1(65536):
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while data := conn.recv(65536):
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
"""


def test_proxy_command_carries_the_connection(sshd: SshServer, tmp_path: Path) -> None:
    relay, used = tmp_path / "relay.py", tmp_path / "relay.log"
    relay.write_text(RELAY)
    extra = f"    proxyCommand: {sys.executable} {relay} %h %p {used}"
    done = run_flow(tmp_path, command(sshd, ["echo through the proxy"], extra=extra),
                    secrets_env(SSH_PASSWORD=sshd.password))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "through the proxy" in done.stdout
    assert used.read_text() == f"relay 127.0.0.1:{sshd.port}\n"


def test_a_task_timeout_stops_the_remote_command(sshd: SshServer, tmp_path: Path) -> None:
    tasks = command(sshd, ["echo started", "sleep 600", "echo never reached"], extra="    timeout: PT2S")
    done = run_flow(tmp_path, tasks, secrets_env(SSH_PASSWORD=sshd.password))
    shown = done.stdout + done.stderr
    assert done.returncode != 0
    assert "started" in shown
    assert "never reached" not in shown.replace("echo never reached", "")
    assert remote_processes(sshd, "sleep 600") == []  # the server was told to stop them: none is left


def remote_processes(sshd: SshServer, command: str) -> list[str]:
    """The test user's processes running `command`, once those being stopped had their time to end (at most 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        found = subprocess.run(["pgrep", "-u", sshd.user, "-f", command], capture_output=True, text=True).stdout.split()
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_without_the_ssh_extra_the_type_validates_and_the_run_names_the_pip_install(tmp_path: Path) -> None:
    source = tmp_path / "flow.yaml"
    source.write_text(
        "id: remote\nnamespace: acme.ssh\ntasks:\n  - id: cmd\n    type: io.kestra.plugin.fs.ssh.Command\n"
        "    host: 127.0.0.1\n    username: u\n    password: p\n    commands: [ls]\n"
    )
    python = python_hiding(tmp_path, ["paramiko"])
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    checked = subprocess.run([str(python), "-m", "gitsync", "validate", str(source)],
                             capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    done = subprocess.run([str(python), "-m", "gitsync", "run", "--file", str(source)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)  # fmt: skip
    assert done.returncode != 0
    assert "ssh.Command needs the Python package paramiko" in done.stdout + done.stderr
    assert "pip install 'gitsync[ssh]'" in done.stdout + done.stderr


def test_a_secret_printed_by_a_remote_command_is_masked_in_the_log(sshd: SshServer, tmp_path: Path) -> None:
    tasks = command(sshd, ["echo \"token={{ secret('API_TOKEN') }}\"", "echo \"again {{ secret('API_TOKEN') }}\" >&2"])
    done = run_flow(tmp_path, tasks, secrets_env(SSH_PASSWORD=sshd.password, API_TOKEN="tok-5f1e9a-very-secret"))
    shown = done.stdout + done.stderr
    assert done.returncode == 0, shown
    assert "token=" in shown
    assert "again " in shown
    assert "tok-5f1e9a-very-secret" not in shown
