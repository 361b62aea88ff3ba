"""What the SaaS job API servers share: a real HTTP server on 127.0.0.1 that hands each request to a provider.

    provider = FakeFivetran(api_key="k", api_secret="s")
    with serve(provider) as server:        # or started once per session by a fixture
        task.baseUrl = server.url
        ...
        assert provider.violations == []

A provider (`Provider` subclass: tests/saas/fivetran.py, airbyte.py, dbtcloud.py, openai.py) is written from the
provider's published API documentation: `handle(request)` checks the method, the path, the auth header and the
body against the documented shape and answers as the documentation says, raising `Refusal` for an error answer.
A refusal the client caused by breaking the documented contract is also kept in `violations` (a test asserts it
stays empty); an answer the test asked for (an unknown id, a rate limit) is not a violation. Every request is kept
in `requests`, so a test can say what was called.

`provider.fail(status, body, times)` answers the next requests with a fault (429 with `Retry-After` 0 by default),
then the documented answers again.
"""

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
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Header names lower-cased."""
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class Refusal(Exception):
    """An error answer; `violation` when the client broke the documented contract."""

    def __init__(self, answer: Answer, violation: str | None = None) -> None:
        super().__init__(violation or str(answer.body))
        self.answer = answer
        self.violation = violation


@dataclass
class Fault:
    status: int
    body: Any
    headers: dict[str, str]
    times: int


class Provider(ABC):
    """One provider's documented API; subclasses implement `route` and the error body shape (`error`)."""

    name = "provider"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self.faults: list[Fault] = []

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.violations.clear()
            self.faults.clear()

    def fail(self, status: int, body: Any, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next `times` requests with `status` and `body` (before any check)."""
        with self.lock:
            self.faults.append(Fault(status, body, headers or {"Retry-After": "0"}, times))

    def handle(self, request: Request) -> Answer:
        with self.lock:
            self.requests.append(request)
            if self.faults:
                fault = self.faults[0]
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.pop(0)
                return Answer(fault.status, fault.body, fault.headers)
            try:
                return self.route(request)
            except Refusal as refusal:
                if refusal.violation:
                    self.violations.append(f"{request.method} {request.path}: {refusal.violation}")
                return refusal.answer

    @abstractmethod
    def route(self, request: Request) -> Answer:
        """The documented answer to one request (a `Refusal` for what the API refuses)."""

    @abstractmethod
    def error(self, status: int, message: str) -> Any:
        """The provider's documented error body."""

    def refuse(self, status: int, message: str, violation: bool = True) -> Refusal:
        return Refusal(Answer(status, self.error(status, message)), message if violation else None)

    def json_body(self, request: Request, schema: dict[str, type | tuple[type, ...]], required: set[str]) -> Any:
        """The JSON body, checked: `Content-Type: application/json`, an object of only `schema`'s keys, each of
        its type, the `required` ones present. A body that breaks it is refused with 400 (and a violation)."""
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise self.refuse(400, f"Content-Type must be application/json, got {request.headers.get('content-type')}")
        try:
            body = request.json()
        except ValueError:
            raise self.refuse(400, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise self.refuse(400, f"the body must be a JSON object, got {body!r}")
        unknown = sorted(set(body) - set(schema))
        if unknown:
            raise self.refuse(400, f"unknown fields {unknown}")
        missing = sorted(required - set(body))
        if missing:
            raise self.refuse(400, f"missing required fields {missing}")
        for key, kind in schema.items():
            if key in body and body[key] is not None and not isinstance(body[key], kind):
                raise self.refuse(400, f"{key} must be {kind}, got {body[key]!r}")
            if key in body and kind is not bool and isinstance(body[key], bool) and bool not in _kinds(kind):
                raise self.refuse(400, f"{key} must be {kind}, got a boolean")
        return body


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


class _Handler(BaseHTTPRequestHandler):
    server: ApiServer

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            raw=raw,
        )
        answer = self.server.provider.handle(request)
        payload = b"" if answer.body is None else json.dumps(answer.body).encode("utf-8")
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, provider: Provider) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.provider = provider

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def serve(provider: Provider) -> Iterator[ApiServer]:
    """The provider's API served on a free port of 127.0.0.1 until the block ends."""
    server = ApiServer(provider)
    thread = threading.Thread(target=server.serve_forever, name=f"fake-{provider.name}", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
