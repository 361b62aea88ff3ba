"""A small base for the notification providers' API servers (tests/saas/<provider>.py): one HTTP server on
127.0.0.1 per provider, started once per session, that records each request, hands it to the provider's `answer`
(which checks method, path, credential and body against the provider's published API and answers as it
documents), and can be told to rate-limit the next requests (429 with Retry-After), as a provider does."""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Header names lower-cased."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: Any = b""
    """bytes, text, or JSON data."""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "text/plain"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


class ApiServer(ABC):
    """Subclass and implement `answer` (and `throttled`, the provider's 429); `accepted` keeps what was accepted."""

    name = "api"

    def __init__(self) -> None:
        self.received: list[Request] = []
        self.accepted: list[Request] = []
        self._throttle = 0
        self._retry_after = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                server._serve(self)

            def do_GET(self) -> None:
                server._serve(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name=f"{self.name}-api", daemon=True)

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def throttle(self, requests: int, retry_after: int) -> None:
        """Answer the next `requests` requests with the provider's 429, saying to wait `retry_after` seconds."""
        with self._lock:
            self._throttle, self._retry_after = requests, retry_after

    @abstractmethod
    def answer(self, request: Request) -> Reply:
        """The documented reply to one post (the request checked against the provider's API)."""

    def throttled(self, retry_after: int) -> Reply:
        return Reply(429, "Too Many Requests", {"Retry-After": str(retry_after)})

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        request = Request(
            method=handler.command,
            path=parts.path,
            query={k: v[-1] for k, v in parse_qs(parts.query).items()},
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=handler.rfile.read(length),
        )
        with self._lock:
            self.received.append(request)
            limited = self._throttle > 0
            if limited:
                self._throttle -= 1
        reply = self.throttled(self._retry_after) if limited else self.answer(request)
        if 200 <= reply.status < 300:
            with self._lock:
                self.accepted.append(request)
        body, content_type = reply.encoded()
        handler.send_response(reply.status)
        if body or reply.status != 204:
            handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)


@contextmanager
def running(server: ApiServer) -> Iterator[ApiServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def json_body(request: Request) -> Any:
    """The JSON body, or None when it is not JSON or not sent as application/json."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        return request.json()
    except ValueError:
        return None
