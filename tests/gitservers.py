"""Real git servers on 127.0.0.1 for tests: smart HTTP (git http-backend), git:// (git daemon), and repo builders.

Each server serves every repository under `root`, so `<base_url>/<name>.git` reaches `root/<name>.git`:

    with http_git_server(tmp_path / "srv", token="s3cret") as base:      # basic auth: any username, password=token
        fetch(SourceConfig(repo=f"{base}/flows.git", token_env="TOKEN", ...), data_dir)
    with git_daemon(tmp_path / "srv") as base:                            # git://127.0.0.1:<port>
        ...

`GitRepo` builds repositories with the git CLI (the tests may use git; gitsync itself never does).
The HTTP server is a WSGI app (`http_backend_app`) served by wsgiref in a thread; `serve_wsgi` takes any WSGI app,
so a test can put a middleware in front (to cut a response short, count requests, …).
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(*args: str, cwd: Path | None = None) -> str:
    """Run the git CLI with a fixed identity and no user/system config; return stdout, stripped."""
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


class GitRepo:
    """A non-bare repository with a work tree, built with the git CLI.

    `commit({"flows/a.yaml": "..."})` writes the files (None deletes one), commits them and returns the sha.
    """

    def __init__(self, path: Path, branch: str = "main") -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        git("init", "-q", "-b", branch, str(path))

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        for name, content in files.items():
            target = self.path / name
            if content is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        git("add", "-A", cwd=self.path)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.path)
        return self.head()

    def head(self, rev: str = "HEAD") -> str:
        return git("rev-parse", rev, cwd=self.path)

    def checkout_orphan(self, branch: str) -> None:
        """Start an unrelated history on `branch` (empty index), e.g. to simulate a force-push."""
        git("checkout", "-q", "--orphan", branch, cwd=self.path)
        git("rm", "-rqf", "--ignore-unmatch", ".", cwd=self.path)

    def publish(self, root: Path, name: str) -> Path:
        """Mirror every branch and HEAD into a bare `root/<name>.git` (created if needed), as a push would."""
        bare = root / f"{name}.git"
        if not bare.exists():
            git("init", "-q", "--bare", str(bare))
        git("push", "-q", "--force", "--prune", str(bare), "refs/heads/*:refs/heads/*", cwd=self.path)
        current = git("symbolic-ref", "HEAD", cwd=self.path)
        git("symbolic-ref", "HEAD", current, cwd=bare)
        return bare


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port_url(scheme: str = "http") -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    return f"{scheme}://127.0.0.1:{free_port()}/nothing.git"


# --- smart HTTP ----------------------------------------------------------------------------------------------


def http_backend_app(root: Path, token: str | None = None) -> WsgiApp:
    """WSGI app running `git http-backend` as CGI over every repository under `root`.

    With a `token`, each request needs basic auth whose password is the token (any username, as GitHub's
    `x-access-token` or GitLab's `oauth2`): a missing or wrong one gets 401 with a `WWW-Authenticate` challenge.
    """

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if token is not None and _password(environ) != token:
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Length", "0")])
            return [b""]
        status, headers, body = _run_http_backend(root, environ)
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]

    return app


def _password(environ: dict[str, Any]) -> str | None:
    header = environ.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Basic "):
        return None
    _, _, password = base64.b64decode(header[6:]).decode("utf-8", "replace").partition(":")
    return password


def _run_http_backend(root: Path, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    cgi_env = {
        "PATH": os.environ.get("PATH", ""),
        "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "REQUEST_METHOD": environ["REQUEST_METHOD"],
        "PATH_INFO": environ.get("PATH_INFO", ""),
        "QUERY_STRING": environ.get("QUERY_STRING", ""),
        "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
        "REMOTE_ADDR": environ.get("REMOTE_ADDR", "127.0.0.1"),
        "REMOTE_USER": "test",
        "GIT_PROTOCOL": environ.get("HTTP_GIT_PROTOCOL", ""),
        "HTTP_CONTENT_ENCODING": environ.get("HTTP_CONTENT_ENCODING", ""),
    }
    body = _request_body(environ)
    cgi_env["CONTENT_LENGTH"] = str(len(body))
    done = subprocess.run(["git", "http-backend"], input=body, env=cgi_env, capture_output=True, check=False)
    head, _, payload = done.stdout.partition(b"\r\n\r\n")
    status, headers = "200 OK", []
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = value.strip()
        elif name and name.lower() != "content-length":
            headers.append((name, value.strip()))
    return status, headers, payload


def _request_body(environ: dict[str, Any]) -> bytes:
    """The request body, with chunked transfer-encoding undone (wsgiref hands it over raw)."""
    stream = environ["wsgi.input"]
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() != "chunked":
        return stream.read(int(environ.get("CONTENT_LENGTH") or 0))
    chunks = []
    while True:
        size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            stream.readline()
            return b"".join(chunks)
        chunks.append(stream.read(size))
        stream.readline()


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_wsgi(app: WsgiApp) -> Iterator[str]:
    """Serve a WSGI app on 127.0.0.1:<free port> in a thread; yield `http://127.0.0.1:<port>`."""
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="test-http-git", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def http_git_server(root: Path, token: str | None = None) -> Iterator[str]:
    """Smart HTTP over every repository under `root`; yield the base URL (`<base>/<name>.git`)."""
    with serve_wsgi(http_backend_app(root, token)) as base:
        yield base


# --- git:// --------------------------------------------------------------------------------------------------


@contextmanager
def git_daemon(root: Path) -> Iterator[str]:
    """`git daemon` exporting every repository under `root`; yield `git://127.0.0.1:<port>` and stop it after."""
    port = free_port()
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--export-all",
            "--informative-errors",
            "--reuseaddr",
            f"--base-path={root}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(root),
        ],
        env={**os.environ, **GIT_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, proc)
        yield f"git://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"git daemon exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"git daemon did not listen on 127.0.0.1:{port} within {timeout}s")


# --- a server that never answers ------------------------------------------------------------------------------


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections and never sends a byte (to test timeouts)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, name="test-silent-server", daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()
