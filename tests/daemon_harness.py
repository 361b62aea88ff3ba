"""Run `gitsync daemon` as a real subprocess on 127.0.0.1: start it on a free port, wait for /healthz, stop it with
SIGTERM or kill it with SIGKILL, and read its SQLite file from outside (read-only, as another process would).

    with running_daemon(tmp_path, sources=[{"name": "main", "repo": str(repo), ...}]) as daemon:
        daemon.wait_for(lambda: "acme.hello" in daemon.flow_uids(), "the flow is applied")

Nothing here sleeps to assert: `wait_for` polls a condition until a (generous) deadline and fails with the daemon's
log tail, so the tests hold on a loaded 2-core machine.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any

import httpx
import yaml
from gitservers import free_port
from shared import SHARED, require

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PAYLOADS = Path(os.environ.get("GITSYNC_TEST_PAYLOADS") or SHARED / "hosts" / "payloads")
"""The hosts' real webhook payloads (CI lays ../shared beside the checkout)."""
START_TIMEOUT = 60.0
"""Seconds for a daemon to answer /healthz (imports are slow on a loaded machine)."""
STOP_TIMEOUT = 30.0


class DaemonError(AssertionError):
    """The daemon did not start, did not stop, or a condition was not met in time (message holds the log tail)."""


@dataclass
class Daemon:
    """One daemon subprocess and the files it owns."""

    proc: subprocess.Popen[bytes]
    port: int
    db: Path
    data_dir: Path
    log_path: Path
    config_path: Path | None
    """None for a daemon started with flags (`start_cli_daemon`)."""
    env: dict[str, str]
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30.0, trust_env=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    # -- http -------------------------------------------------------------------------------------------------

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(path, **kwargs)

    def api(self, path: str) -> Any:
        """The JSON of a GET; for a paged list (`items`, `next_cursor`), every item of every page."""
        response = self.get(path)
        response.raise_for_status()
        body = response.json()
        if not (isinstance(body, dict) and set(body) == {"items", "next_cursor"}):
            return body
        items = list(body["items"])
        while body["next_cursor"]:
            body = self.client.get(path, params={"cursor": body["next_cursor"]}).raise_for_status().json()
            items += body["items"]
        return items

    def flow_uids(self) -> set[str]:
        return {row["uid"] for row in self.api("/api/v1/flows")}

    def flow_revisions(self) -> dict[str, tuple[int, str, str]]:
        """Each active flow's revision, commit and the time it was applied: what a re-apply would change."""
        return {f["uid"]: (f["revision"], f["commit"]["sha"], f["applied_at"]) for f in self.api("/api/v1/flows")}

    def trigger_uids(self) -> set[str]:
        return {row["uid"] for row in self.api("/api/v1/triggers")}

    def health(self) -> httpx.Response:
        return self.get("/healthz")

    # -- waiting ----------------------------------------------------------------------------------------------

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_for(self, condition: Callable[[], Any], what: str, timeout: float = 60.0, interval: float = 0.05) -> Any:
        """Poll `condition` until it returns a truthy value (returned); fail with the log tail after `timeout`.

        HTTP errors while polling count as "not yet"; a daemon that exits fails at once.
        """
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            try:
                value = condition()
            except (httpx.HTTPError, sqlite3.Error, OSError) as exc:
                value, last_error = None, exc
            if value:
                return value
            if not self.alive():
                raise DaemonError(f"daemon exited ({self.proc.returncode}) while waiting for {what}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise DaemonError(
                    f"timed out after {timeout}s waiting for {what} (last error: {last_error!r})\n{self.log_tail()}"
                )
            time.sleep(interval)

    def wait_healthz(self, timeout: float = START_TIMEOUT) -> httpx.Response:
        """Until /healthz answers at all (200 ok or 503 degraded)."""
        return self.wait_for(lambda: self.health(), "/healthz to answer", timeout)

    # -- ending -----------------------------------------------------------------------------------------------

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then wait for a clean exit; returns the exit code (SIGKILL and fail if it hangs)."""
        self.client.close()
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise DaemonError(f"daemon did not stop within {timeout}s of SIGTERM\n{self.log_tail()}") from None
        return int(self.proc.returncode)

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up (a crash)."""
        self.client.close()
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT)

    # -- state, read from outside -----------------------------------------------------------------------------

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return query_db(self.db, sql, params)


def query_db(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Read the state file read-only, as a second process would (WAL lets it read while the daemon writes)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def daemon_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment without GITSYNC_* overrides from outside, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITSYNC_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def write_config(
    directory: Path,
    sources: list[dict[str, Any]],
    port: int,
    *,
    db: Path | None = None,
    data_dir: Path | None = None,
    token_env: str = "GITSYNC_API_TOKEN",
) -> Path:
    config = {
        "db": str(db or directory / "gitsync.db"),
        "data_dir": str(data_dir or directory / "data"),
        "http": {"listen": f"127.0.0.1:{port}", "token_env": token_env},
        "sources": sources,
    }
    path = directory / "gitsync.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def listing_modules(listing: Path) -> list[str]:
    """The command that runs `python -m gitsync` (arguments follow it) and, when the process exits, writes every
    module it had imported to `listing` (a JSON list): what a command or the service holds, not how fast it is."""
    code = (
        "import atexit, json, runpy, sys\n"
        f"atexit.register(lambda: open({str(listing)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
        "sys.argv = ['gitsync', *sys.argv[1:]]\n"
        "runpy.run_module('gitsync', run_name='__main__', alter_sys=True)\n"
    )
    return [PYTHON, "-c", code]


def start_daemon(
    directory: Path,
    sources: list[dict[str, Any]],
    *,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    log_level: str = "INFO",
    wait: bool = True,
    attempts: int = 3,
    modules_to: Path | None = None,
) -> Daemon:
    """Start `python -m gitsync daemon --config <directory>/gitsync.yaml` and (by default) wait for /healthz.

    The db and data dir live in `directory`, so starting again on the same directory restarts on the same state.
    A port taken between choosing it and binding it is retried on another free port. With `modules_to`, the
    daemon writes there, when it stops, the modules it imported (`listing_modules`).
    """
    directory.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        daemon = _spawn(directory, sources, env, port or free_port(), log_level, modules_to)
        if not wait:
            return daemon
        try:
            daemon.wait_healthz()
            return daemon
        except DaemonError:
            in_use = "address already in use" in daemon.log_tail().lower()
            if daemon.alive():
                daemon.kill()
            if not in_use or port is not None or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _spawn(
    directory: Path,
    sources: list[dict[str, Any]],
    env: Mapping[str, str] | None,
    port: int,
    log_level: str,
    modules_to: Path | None = None,
) -> Daemon:
    config = write_config(directory, sources, port)
    log_path = directory / "daemon.log"
    python = [PYTHON, "-m", "gitsync"] if modules_to is None else listing_modules(modules_to)
    command = [*python, "daemon", "--config", str(config), "--log-level", log_level]
    full_env = daemon_env(env)
    with log_path.open("ab") as log:
        log.write(f"--- start {' '.join(command)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            command, cwd=directory, env=full_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return Daemon(proc, port, directory / "gitsync.db", directory / "data", log_path, config, full_env)


def start_cli_daemon(
    cwd: Path,
    args: list[str],
    *,
    env: Mapping[str, str] | None = None,
    python: str | Path = PYTHON,
    wait: bool = True,
) -> Daemon:
    """`gitsync daemon ARGS --listen 127.0.0.1:<free port>` started in `cwd` with flags, as the README's first
    command does (no config file: the state is `cwd`'s gitsync.db and .gitsync unless ARGS say otherwise).
    `env` is the daemon's whole environment (default: `daemon_env()`)."""
    port = free_port()
    log_path = cwd.parent / f"{cwd.name}-daemon.log"
    command = [str(python), "-m", "gitsync", "daemon", *args, "--listen", f"127.0.0.1:{port}"]
    full_env = {"PYTHONUNBUFFERED": "1", **(daemon_env() if env is None else env)}
    with log_path.open("ab") as log:
        log.write(f"--- start {' '.join(command)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            command, cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    daemon = Daemon(proc, port, cwd / "gitsync.db", cwd / ".gitsync", log_path, None, full_env)
    if wait:
        daemon.wait_healthz()
    return daemon


@contextmanager
def running_daemon(directory: Path, sources: list[dict[str, Any]], **kwargs: Any) -> Iterator[Daemon]:
    """A started daemon, stopped (SIGTERM) at the end; killed if it does not stop."""
    daemon = start_daemon(directory, sources, **kwargs)
    try:
        yield daemon
    finally:
        if daemon.alive():
            daemon.stop()


# -- metrics and webhooks -----------------------------------------------------------------------------------------


def metric_value(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The sum of the samples `name` whose labels include `labels`, from a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in (labels or {}).items()):
                total += sample.value
    return total


def github_push_payload(repo_url: str, commit: str, branch: str = "main", name: str = "push.payload.json") -> bytes:
    """A real GitHub push payload with `ref`, `after` and the repository's URLs rewritten to `repo_url`."""
    data = json.loads(require(PAYLOADS / "github" / name).read_bytes())
    data["ref"] = f"refs/heads/{branch}"
    data["after"] = commit
    data["deleted"] = False
    repository = data["repository"]
    for key in ("html_url", "clone_url", "url", "svn_url", "git_url"):
        repository[key] = repo_url
    host_path = repo_url.split("://", 1)[-1].split("@")[-1]
    host, _, path = host_path.partition("/")
    repository["ssh_url"] = f"git@{host.split(':')[0]}:{path}"
    repository["default_branch"] = branch
    return json.dumps(data).encode()


def github_headers(body: bytes, secret: str, delivery: str, event: str = "push") -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": f"sha256={signature}",
    }


# -- a git server that can go away and come back on the same port --------------------------------------------------


class RestartableGitServer:
    """Smart HTTP (gitservers.http_backend_app) on a fixed 127.0.0.1 port, so a test can stop it and start it again
    while the daemon keeps the same remote URL."""

    def __init__(self, root: Path, token: str | None = None) -> None:
        self.root = root
        self.token = token
        self.port = free_port()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

        from gitservers import http_backend_app

        class Server(ThreadingMixIn, WSGIServer):
            daemon_threads = True
            allow_reuse_address = True

        class Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

        app = http_backend_app(self.root, self.token)
        self._server = make_server("127.0.0.1", self.port, app, server_class=Server, handler_class=Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(5)
            self._server = None

    def __enter__(self) -> RestartableGitServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
