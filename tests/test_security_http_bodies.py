"""Issue 9, class 5: no unbounded work before a check. A real daemon subprocess, attacked over raw sockets on
127.0.0.1: a 400 MB body behind a wrong Webhook trigger key, a 24 MB unsigned webhook, deeply nested JSON, and
200 clients that send their requests one byte at a time. The daemon's RSS (VmRSS) stays bounded and /healthz
keeps answering within a second."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import threading
import time
from pathlib import Path

import httpx
from daemon_harness import Daemon
from http_attack import (
    AUTH,
    HOOK_PATH,
    SECRET,
    RssWatch,
    connect,
    http_daemon,
    read_response,
    request_head,
    stream_body,
)

MB = 1024 * 1024
CHUNK = b"x" * MB


def _healthz_fast(daemon: Daemon) -> float:
    started = time.monotonic()
    response = httpx.get(f"{daemon.url}/healthz", timeout=5, trust_env=False)
    assert response.status_code in (200, 503)
    return time.monotonic() - started


def test_a_400_mb_body_is_refused_before_it_is_read(tmp_path: Path) -> None:
    with http_daemon(tmp_path) as daemon:
        for path, expected in [
            (HOOK_PATH.replace("webhook-key", "wrong-key"), 404),  # the key is checked before the body is read
            (HOOK_PATH, 413),  # the right key: refused at 10 MB, while streaming
        ]:
            with RssWatch(daemon.pid) as rss, connect(daemon.port) as sock:
                headers = {"Content-Type": "application/json", "Content-Length": str(400 * MB)}
                sock.sendall(request_head("POST", path, daemon.port, headers))
                sent = stream_body(sock, 400 * MB, CHUNK)
                status, data = read_response(sock)
            assert status == expected, data
            assert sent < 100 * MB, f"the daemon read {sent} bytes before refusing"
            assert rss.growth_mb < 50, f"RSS grew by {rss.growth_mb:.0f} MB"
        # the same without Content-Length (chunked): the limit holds while streaming
        with RssWatch(daemon.pid) as rss, connect(daemon.port) as sock:
            sock.sendall(request_head("POST", HOOK_PATH, daemon.port, {"Transfer-Encoding": "chunked"}))
            sent = stream_body(sock, 400 * MB, f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n")
            status, data = read_response(sock)
        assert status == 413 and sent < 100 * MB, (status, sent)
        assert rss.growth_mb < 50
        assert _healthz_fast(daemon) < 1.0


def test_a_24_mb_unsigned_webhook_is_refused_without_parsing(tmp_path: Path) -> None:
    # valid JSON of 12 million numbers: parsing it would take seconds and hundreds of MB
    body = b'{"zeros": [' + b"0," * (12 * MB) + b'0], "repository": {"full_name": "x/y"}}'
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-24mb", "Content-Type": "application/json"}
    with http_daemon(tmp_path) as daemon:
        for extra in ({}, {"X-Hub-Signature-256": "sha256=" + "0" * 64}):
            with RssWatch(daemon.pid) as rss:
                started = time.monotonic()
                response = daemon.post("/webhooks/github", content=body, headers={**headers, **extra})
                elapsed = time.monotonic() - started
            assert response.status_code == 401, response.text
            assert elapsed < 5, elapsed
            assert rss.growth_mb < 80, f"RSS grew by {rss.growth_mb:.0f} MB"  # the buffered body, not its parse
        # a signed body is parsed after the check: broken JSON is then a 400
        broken = b"{ not json"
        signature = hmac.new(SECRET.encode(), broken, hashlib.sha256).hexdigest()
        signed = daemon.post("/webhooks/github", content=broken,
                             headers={**headers, "X-Hub-Signature-256": f"sha256={signature}"})  # fmt: skip
        assert signed.status_code == 400 and "not JSON" in signed.json()["detail"]
        assert _healthz_fast(daemon) < 1.0


def test_deeply_nested_json_is_a_400(tmp_path: Path) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    over_the_cap = b'{"a": ' + b"[" * 70 + b"1" + b"]" * 70 + b"}"
    unclosed = b"{" + b'"a":{' * 50_000
    with http_daemon(tmp_path) as daemon:
        for body in (deep, over_the_cap, unclosed):
            hook = daemon.post(HOOK_PATH, content=body, headers={"Content-Type": "application/json"})
            if body is unclosed:  # not JSON at all: Kestra's trigger.body is then the text
                assert hook.status_code in (200, 400), hook.text
            else:
                assert hook.status_code == 400, hook.text
                assert "nests more than 64 levels" in hook.json()["detail"]
            run = daemon.post("/api/v1/executions/acme.demo/hook", content=body, headers=AUTH)
            assert run.status_code == 400, run.text
        deep_signed = b'{"a":' + deep + b"}"
        signature = hmac.new(SECRET.encode(), deep_signed, hashlib.sha256).hexdigest()
        github = daemon.post("/webhooks/github", content=deep_signed,
                             headers={"X-GitHub-Event": "push", "Content-Type": "application/json",
                                      "X-Hub-Signature-256": f"sha256={signature}"})  # fmt: skip
        assert github.status_code == 400 and "nests more than 64 levels" in github.json()["detail"], github.text
        assert daemon.alive() and _healthz_fast(daemon) < 1.0
        assert "Traceback" not in daemon.log_path.read_text(errors="replace")


def test_slow_clients_are_dropped_and_do_not_stop_healthz(tmp_path: Path) -> None:
    with http_daemon(tmp_path, header_timeout=3, body_timeout=3) as daemon:
        port = daemon.port
        slow_heads = [connect(port, timeout=15) for _ in range(180)]
        slow_bodies = [connect(port, timeout=15) for _ in range(20)]
        for sock in slow_heads:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:")
        for sock in slow_bodies:
            sock.sendall(request_head("POST", HOOK_PATH, port, {"Content-Length": "1000"}) + b'{"a": ')
        stop = threading.Event()

        def trickle() -> None:  # one byte per client every 0.5 s, until the daemon drops them
            while not stop.wait(0.5):
                for sock in slow_heads + slow_bodies:
                    with contextlib.suppress(OSError):
                        sock.send(b"1")

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        try:
            started = time.monotonic()
            while time.monotonic() - started < 2.5:  # while every slow client is still held
                assert _healthz_fast(daemon) < 1.0
                time.sleep(0.2)
            answers = [read_response(sock, timeout=12) for sock in slow_bodies]
            assert all(status == 408 for status, _ in answers), answers[:3]
            dropped = 0
            for sock in slow_heads:
                sock.settimeout(12)
                try:
                    dropped += sock.recv(1024) == b""
                except ConnectionResetError:
                    dropped += 1
            assert dropped == len(slow_heads)
            assert time.monotonic() - started < 15
            assert _healthz_fast(daemon) < 1.0
        finally:
            stop.set()
            thread.join(5)
            for sock in slow_heads + slow_bodies:
                sock.close()
