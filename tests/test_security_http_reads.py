"""Issue 9, class 4: reads need authorisation too. Attacked through a real daemon subprocess over real sockets on
127.0.0.1: a page on another site reaching the daemon through DNS rebinding (its own Host name), reads without
the token when the daemon listens off loopback, and credential headers that a Webhook trigger received."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
from daemon_harness import Daemon
from http_attack import AUTH, HOOK_PATH, connect, http_daemon, read_response

READS = [
    "/api/v1/executions",
    "/api/v1/flows",
    "/api/v1/syncs",
    "/api/v1/triggers",
    "/api/v1/namespaces",
    "/api/v1/sources",
    "/api/v1/dashboard",
    "/api/v1/statuses",
    "/api/v1/workers",
]
CREDENTIALS = {
    "Authorization": "Bearer leaked-authorization-value",
    "Proxy-Authorization": "Basic leaked-proxy-authorization",
    "Cookie": "session=leaked-cookie-value",
    "X-Hub-Signature-256": "sha256=leakedhubsignature",
    "X-Hub-Signature": "sha1=leakedhubsignaturesha1",
    "X-Gitlab-Token": "leaked-gitlab-token",
    "X-Gitea-Signature": "leakedgiteasignature",
}


def _with_host(daemon: Daemon, path: str, host: str, **kwargs: object) -> httpx.Response:
    return daemon.client.get(path, headers={"Host": host, **kwargs.get("headers", {})})  # type: ignore[dict-item]


def test_a_rebinding_host_is_refused_and_loopback_names_are_answered(tmp_path: Path) -> None:
    with http_daemon(tmp_path) as daemon:
        port = daemon.port
        for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.nip.io:{port}", f"localhost:{port + 1}"):
            for path in [*READS, "/healthz", "/metrics"]:
                response = _with_host(daemon, path, host)
                assert response.status_code == 421, (host, path, response.text)
                assert "does not answer for that Host" in response.json()["detail"]
        refused_post = daemon.client.post(HOOK_PATH, json={"a": 1}, headers={"Host": f"evil.example:{port}"})
        assert refused_post.status_code == 421
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
            assert _with_host(daemon, "/api/v1/executions", host).status_code == 200, host
        # no Host at all (HTTP/1.0 allows it): 400, as JSON; two Host headers: h11 refuses them itself
        with connect(port) as sock:
            sock.sendall(b"GET /api/v1/executions HTTP/1.0\r\n\r\n")
            status, data = read_response(sock)
        assert status == 400 and b'"detail":"the request needs one valid Host header"' in data, data
        with connect(port) as sock:
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\n\r\n".encode())
            status, data = read_response(sock)
        assert status == 400, data


def test_off_loopback_reads_need_the_token(tmp_path: Path) -> None:
    """Listening on 0.0.0.0 the daemon is reachable from the network: every read needs the token, though this test
    connects through 127.0.0.1 (a proxy on the same machine does too, so the peer address proves nothing)."""
    public = "https://gitsync.example.com"
    with http_daemon(tmp_path, "0.0.0.0", public_url=public) as daemon:
        for path in READS:
            anonymous = daemon.get(path)
            assert anonymous.status_code == 401, (path, anonymous.text)
            assert anonymous.headers["www-authenticate"] == "Bearer"
            wrong = daemon.get(path, headers={"Authorization": "Bearer not-the-token"})
            assert wrong.status_code == 401
            assert daemon.get(path, headers=AUTH).status_code == 200
            # the public name, as a proxy in front of the daemon passes it
            public_host = daemon.client.get(path, headers={"Host": "gitsync.example.com", **AUTH})
            assert public_host.status_code == 200, public_host.text
            assert daemon.client.get(path, headers={"Host": "gitsync.example.com"}).status_code == 401
        executions = daemon.get("/api/v1/executions/some-id")
        assert executions.status_code == 401
        assert daemon.get("/healthz").status_code == 200  # health stays open for load balancers
        assert daemon.client.get("/healthz", headers={"Host": "evil.example"}).status_code == 421
        assert daemon.client.get("/api/v1/flows", headers={"Host": "evil.example", **AUTH}).status_code == 421


def test_on_loopback_reads_stay_open(tmp_path: Path) -> None:
    with http_daemon(tmp_path) as daemon:
        for path in READS:
            assert daemon.get(path).status_code == 200, path


def test_credential_headers_are_never_recorded_nor_served(tmp_path: Path) -> None:
    with http_daemon(tmp_path) as daemon:
        # a row recorded before headers were filtered (an older daemon wrote it)
        old = {k.lower(): v.replace("leaked", "stored-earlier") for k, v in CREDENTIALS.items()}
        legacy = {"body": {}, "headers": {**old, "x-kept": "kept"}}
        conn = sqlite3.connect(daemon.db, timeout=30)
        with conn:
            conn.execute(
                """INSERT INTO executions (id, flow_uid, revision, commit_sha, state, created_at, source, trigger_vars)
                   VALUES ('exec-legacy', 'acme.demo.hook', 1, ?, 'SUCCESS', '2024-01-01T00:00:00.000+00:00',
                           'main', ?)""",
                ("0" * 40, json.dumps(legacy)),
            )
        conn.close()
        response = daemon.post(HOOK_PATH, json={"hello": "world"}, headers={**CREDENTIALS, "X-Custom": "visible"})
        assert response.status_code == 200, response.text
        execution = response.json()["id"]
        daemon.wait_for(lambda: daemon.api(f"/api/v1/executions/{execution}")["state"] == "SUCCESS", "the run")

        served = [
            daemon.get("/api/v1/executions").text,
            daemon.get(f"/api/v1/executions/{execution}").text,
            daemon.get("/api/v1/executions/exec-legacy").text,
        ]
        stored = daemon.db.read_bytes() + b"".join(
            p.read_bytes() for p in daemon.db.parent.glob("gitsync.db-wal") if p.exists()
        )
        for value in CREDENTIALS.values():
            secret = value.split(" ", 1)[-1].split("=", 1)[-1]
            for text in served:
                assert secret not in text and secret.replace("leaked", "stored-earlier") not in text
            assert secret.encode() not in stored, f"{secret} reached the database"
        listed = {row["id"] for row in daemon.api("/api/v1/executions")}
        assert {execution, "exec-legacy"} <= listed
        rows = {ident: daemon.api(f"/api/v1/executions/{ident}") for ident in (execution, "exec-legacy")}
        assert rows[execution]["trigger_vars"]["headers"]["x-custom"] == "visible"
        assert rows[execution]["trigger_vars"]["body"] == {"hello": "world"}
        assert rows["exec-legacy"]["trigger_vars"]["headers"] == {"x-kept": "kept"}
