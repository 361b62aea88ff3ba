"""A real `gitsync daemon` subprocess with a chosen `http:` block, a flow with a Webhook trigger, and the tools an
attacker's client needs: raw sockets on 127.0.0.1, streamed bodies, and the daemon's RSS from /proc."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from daemon_harness import PYTHON, Daemon, daemon_env
from gitservers import GitRepo, free_port

API_TOKEN = "api-token-for-http-security-tests"
WEBHOOK_KEY = "webhook-key-for-http-security-tests"
SECRET_ENV, SECRET = "GITSYNC_TEST_SEC_WEBHOOK_SECRET", "webhook-secret-for-http-security-tests"
ENV = {"GITSYNC_API_TOKEN": API_TOKEN, SECRET_ENV: SECRET}
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
HOOK_PATH = f"/api/v1/executions/webhook/acme.demo/hook/{WEBHOOK_KEY}"
HOOK_FLOW = f"""\
id: hook
namespace: acme.demo
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: {WEBHOOK_KEY}
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: hello
"""


@contextmanager
def http_daemon(tmp: Path, listen_host: str = "127.0.0.1", **http: Any) -> Iterator[Daemon]:
    """A daemon whose `http.listen` is `listen_host` on a free port, serving one source with the `hook` flow
    (a Webhook trigger); it is reached on 127.0.0.1 whatever it listens on. Waits for the flow to be applied."""
    repo = GitRepo(tmp / "work")
    repo.commit({"flows/hook.yaml": HOOK_FLOW})
    directory = tmp / "daemon"
    directory.mkdir()
    port = free_port()
    host = f"[{listen_host}]" if ":" in listen_host else listen_host
    config = {
        "db": str(directory / "gitsync.db"),
        "data_dir": str(directory / "data"),
        "http": {"listen": f"{host}:{port}", **http},
        "sources": [
            {
                "name": "main",
                "repo": str(repo.path),
                "branch": "main",
                "path": "flows",
                "poll": "1h",
                "webhook_secret_env": SECRET_ENV,
            }
        ],
    }
    config_path = directory / "gitsync.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    log_path = directory / "daemon.log"
    env = daemon_env(ENV)
    command = [PYTHON, "-m", "gitsync", "daemon", "--config", str(config_path), "--log-level", "INFO"]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(command, cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)  # fmt: skip
    daemon = Daemon(proc, port, directory / "gitsync.db", directory / "data", log_path, config_path, env)
    try:
        daemon.wait_healthz()
        daemon.wait_for(lambda: daemon.get("/api/v1/flows", headers=AUTH).status_code == 200, "the API")
        daemon.wait_for(lambda: _has_flow(daemon), "the hook flow to be applied")
        yield daemon
    finally:
        if daemon.alive():
            daemon.stop()


def _has_flow(daemon: Daemon) -> bool:
    return any(r["uid"] == "acme.demo.hook" for r in daemon.get("/api/v1/flows", headers=AUTH).json()["items"])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class RssWatch:
    """The highest VmRSS of `pid` sampled every 20 ms while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline = rss_kb(pid)
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_kb(self.pid))

    def __enter__(self) -> RssWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, rss_kb(self.pid))

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 1024


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def request_head(method: str, path: str, port: int, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket, timeout: float = 10.0) -> tuple[int, bytes]:
    """The status code and whatever the server sent until it closed (or `timeout`)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data:
            head, _, rest = data.partition(b"\r\n\r\n")
            length = [
                int(v) for k, _, v in (h.partition(b":") for h in head.split(b"\r\n")) if k.lower() == b"content-length"
            ]
            if length and len(rest) >= length[0]:
                break
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


def stream_body(sock: socket.socket, total: int, chunk: bytes) -> int:
    """Send up to `total` bytes of `chunk` repeated (never built whole) until the server answers or closes; the
    bytes sent."""
    sent = 0
    sock.setblocking(True)
    sock.settimeout(10)
    import select

    while sent < total:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            break
        piece = chunk[: total - sent]
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            break
        sent += len(piece)
    return sent
