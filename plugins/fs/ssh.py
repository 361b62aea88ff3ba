"""`io.kestra.plugin.fs.ssh.Command`: commands run on a remote host over SSH (paramiko, the `ssh` extra).

The commands are joined by newlines and run by the remote user's shell in one exec channel, as Kestra does. Each
line of stdout is logged at INFO and of stderr at WARN as it arrives; `::{"outputs": {…}}::` lines become
`outputs.<task>.vars` (Kestra's script output protocol, which its Command parses too). An exit code other than 0
fails the task. `env` is sent as SSH environment requests: the server keeps only the names its `AcceptEnv` allows.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, ClassVar, Literal

from plugins.fs.connection import Login, connected
from plugins.scripts.process import TAIL_LINES, _Lines, _Output
from runner.api import RunContext, TaskFailed, TaskKilled
from runner.plugin import Task
from runner.types import Dyn

READ_BYTES = 32 * 1024
WAIT_SECONDS = 0.05


class SshTask(Task):
    """Where and as whom to log in (Kestra's SshInterface), with gitsync's `knownHosts`."""

    host: str
    """The remote host."""
    port: Dyn[str] = "22"
    """The remote port."""
    username: str | None = None
    """The user to log in as (required for PASSWORD and PUBLIC_KEY)."""
    password: str | None = None
    """The password (PASSWORD); use a secret."""
    strictHostKeyChecking: Dyn[Literal["yes", "no", "ask"]] = "no"
    """yes (or ask): only a host whose key knownHosts (or ~/.ssh/known_hosts) lists is accepted; no (Kestra's
    default): an unknown host's key is accepted and its fingerprint logged. A key other than the one known for the
    host is refused either way."""
    knownHosts: str | None = None
    """gitsync's addition: known_hosts lines naming the host keys the server may show (`[host]:port ssh-ed25519
    AAAA…` for a port other than 22, `ssh-keyscan -p PORT HOST` prints them)."""
    enableSshRsa1: Dyn[bool] = False
    """Allow the ssh-rsa (RSA with SHA-1) host and user key signatures, which are off by default."""


class Command(SshTask):
    """Run commands on a remote host over SSH; their output is logged line by line."""

    type_name: ClassVar[str] = "io.kestra.plugin.fs.ssh.Command"
    inert: ClassVar[dict[str, str]] = {
        **Task.inert,
        "warningOnStdErr": "deprecated in Kestra and without effect there: stderr lines are logged at WARN",
        "openSSHConfigDir": "deprecated; the OPEN_SSH method is not available in gitsync",
    }

    commands: list[str]
    """The commands, run one after the other by the remote shell (joined by newlines)."""
    authMethod: Dyn[Literal["PASSWORD", "PUBLIC_KEY", "OPEN_SSH"]] = "PASSWORD"
    """PASSWORD (password) or PUBLIC_KEY (privateKey). OPEN_SSH, which reads the Kestra server's own
    ~/.ssh/config, is refused: a flow does not reach gitsync's host configuration."""
    privateKey: str | None = None
    """The private key's text (OpenSSH or PEM format) for PUBLIC_KEY; use a secret."""
    privateKeyPassphrase: str | None = None
    """The passphrase of privateKey, when it has one."""
    env: Dyn[dict[str, str]] | None = None
    """Environment variables sent to the server (it keeps those its AcceptEnv allows)."""
    proxyCommand: str | None = None
    """A local command whose stdin/stdout carry the SSH connection (OpenSSH ProxyCommand: %h host, %p port, %r
    user)."""
    openSSHConfigDir: str | None = None
    """Deprecated (OPEN_SSH)."""
    openSSHConfigPath: str | None = None
    """For OPEN_SSH, which gitsync refuses."""
    warningOnStdErr: Dyn[bool] | None = None
    """Deprecated, without effect."""

    def login(self) -> Login:
        method = str(self.authMethod).upper()
        if method == "OPEN_SSH":
            raise TaskFailed(
                "authMethod OPEN_SSH reads the SSH configuration of the machine gitsync runs on, which a flow may not "
                "use: give the host, username and password (PASSWORD) or privateKey (PUBLIC_KEY) in the task",
                permanent=True,
            )
        if method == "PASSWORD" and not self.password:
            raise TaskFailed("authMethod PASSWORD needs the password property", permanent=True)
        if method == "PUBLIC_KEY" and not self.privateKey:
            raise TaskFailed("authMethod PUBLIC_KEY needs the privateKey property", permanent=True)
        key = method == "PUBLIC_KEY"
        return Login(
            task_type=self.type_name, host=self.host, port=self.port, username=self.username,
            password=None if key else self.password, private_key=self.privateKey if key else None,
            passphrase=self.privateKeyPassphrase, strict=self.strictHostKeyChecking, known_hosts=self.knownHosts,
            rsa1=self.enableSshRsa1, proxy_command=self.proxyCommand,
        )  # fmt: skip

    def run(self, ctx: RunContext) -> dict[str, Any]:
        if not self.commands:
            raise TaskFailed("commands must list at least one command", permanent=True)
        login = self.login()
        env = {str(k): str(v) for k, v in (self.env or {}).items()} if isinstance(self.env, dict) else {}
        with connected(ctx, login) as client:
            transport = client.get_transport()
            assert transport is not None  # connected() returned: the transport is up
            channel = transport.open_session()
            try:
                if env:
                    channel.update_environment(env)
                channel.exec_command("\n".join(self.commands))
                sink = _Output(ctx, None)
                code = _stream(ctx, channel, sink)
            finally:
                channel.close()
        result = sink.result
        outputs: dict[str, Any] = {"vars": dict(result.vars), "exitCode": code}
        if code != 0:
            tail = "\n".join(list(sink.tail)[-TAIL_LINES:])
            raise TaskFailed(
                f"the commands on {login.where} ended with exit code {code}"
                + (f"; last stderr lines:\n{tail}" if tail else ""),
                outputs=outputs,
            )
        return outputs


def stop_remote(channel: Any) -> None:
    """Ask the server to send SIGTERM to the remote commands (RFC 4254 6.9, which OpenSSH's sshd honours), then close
    the channel: without a terminal, closing alone leaves them running on the host."""
    import paramiko
    from paramiko.common import cMSG_CHANNEL_REQUEST

    message = paramiko.Message()
    message.add_byte(cMSG_CHANNEL_REQUEST)
    message.add_int(channel.remote_chanid)
    message.add_string("signal")
    message.add_boolean(False)
    message.add_string("TERM")
    with contextlib.suppress(Exception):  # the connection may be gone already: nothing left to stop then
        channel.transport._send_user_message(message)
    channel.close()


def _stream(ctx: RunContext, channel: Any, sink: _Output) -> int:
    """Read both streams into the log until the remote command has ended and closed them; its exit code
    (TaskKilled when the execution is killed or the task times out)."""
    out, err = _Lines(sink, stderr=False), _Lines(sink, stderr=True)
    while True:
        got = False
        while channel.recv_ready():
            out.feed(channel.recv(READ_BYTES))
            got = True
        while channel.recv_stderr_ready():
            err.feed(channel.recv_stderr(READ_BYTES))
            got = True
        if ctx.cancelled.is_set():
            stop_remote(channel)
            raise TaskKilled("the SSH command was stopped (the execution was killed or the task timed out)")
        done = channel.exit_status_ready() and (channel.eof_received or channel.closed)
        if done and not channel.recv_ready() and not channel.recv_stderr_ready():
            break
        if not got:
            time.sleep(WAIT_SECONDS)
    out.close()
    err.close()
    return int(channel.recv_exit_status())
