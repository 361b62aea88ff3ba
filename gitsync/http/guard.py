"""What every request passes before a route sees it: the Host header check (DNS rebinding), and the bounded body
reader every route uses (a size limit while streaming and a deadline, answered 413 and 408).

The Host rule: a request is answered only when its Host header names
  - a loopback name (`127.0.0.1`, `localhost`, `[::1]`) when the daemon listens on loopback or the connection
    arrived on a loopback address, with the port it listens on;
  - the listen address itself (when it is not a wildcard) or the address the connection arrived on, with that port;
  - `http.public_url`'s host and port (its scheme's default port when it names none);
  - an entry of `http.allowed_hosts` ("name" for any port, or "name:port").
A missing or malformed Host is 400; another name is 421. Both answer JSON.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gitsync.config import HttpConfig
from gitsync.hosts.webhooks import PayloadError
from gitsync.http.problems import problem

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARDS = frozenset({"", "0.0.0.0", "::", "*"})
CLOSE = {"Connection": "close"}


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, int | None] | None:
    """`name`, `name:port`, `[v6]` or `[v6]:port` as (lower-case name without brackets, port); None if malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        name, rest = value[1:end], value[end + 1 :]
        if end < 0 or not name:
            return None
    else:
        if value.count(":") > 1:  # an IPv6 literal must be bracketed in a Host header
            return None
        name, sep, port = value.partition(":")
        rest = sep + port
    if not name or any(c in name for c in "/@ \t\\"):
        return None
    if not rest:
        return name, None
    if not rest.startswith(":") or not rest[1:].isdigit() or not 0 < int(rest[1:]) <= 65535:
        return None
    return name, int(rest[1:])


@dataclass(frozen=True)
class HostRule:
    listen_host: str
    listen_port: int
    public: tuple[str, int] | None
    allowed: tuple[tuple[str, int | None], ...]

    @classmethod
    def from_settings(cls, http: HttpConfig) -> HostRule:
        public = None
        if http.public_url:
            parts = urlsplit(http.public_url)
            if parts.hostname:
                public = (parts.hostname.lower(), parts.port or (443 if parts.scheme == "https" else 80))
        allowed = tuple(p for p in (split_host(h) for h in http.allowed_hosts) if p is not None)
        return cls(http.host.lower(), http.port, public, allowed)

    def allows(self, header: str, local: tuple[str, int | None] | None) -> bool:
        parsed = split_host(header)
        if parsed is None:
            return False
        name, port = parsed
        if self.public is not None and name == self.public[0] and port in (None, self.public[1]):
            return True  # a proxy in front passes "name" for the scheme's default port
        if any(name == a and (p is None or p == port) for a, p in self.allowed):
            return True
        local_host, local_port = (local[0].lower(), local[1]) if local else ("", None)
        ports = {p for p in (self.listen_port, local_port) if p}
        if (port or 80) not in ports:
            return False
        if name in LOOPBACK_NAMES and (is_loopback(self.listen_host) or is_loopback(local_host)):
            return True
        if self.listen_host not in WILDCARDS and name == self.listen_host.strip("[]"):
            return True
        return bool(local_host) and name == local_host


def _header(scope: Scope, wanted: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == wanted]


class HostCheck:
    """ASGI middleware: refuse a request whose Host header names no host this daemon answers for."""

    def __init__(self, app: ASGIApp, rule: HostRule) -> None:
        self.app = app
        self.rule = rule

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hosts = _header(scope, b"host")
        if len(hosts) != 1 or split_host(hosts[0]) is None:
            response = problem(400, "the request needs one valid Host header", CLOSE)
            await response(scope, receive, send)
            return
        if not self.rule.allows(hosts[0], scope.get("server")):
            message = (
                "this daemon does not answer for that Host: use its listen address, http.public_url, "
                "or add the name to http.allowed_hosts"
            )
            await problem(421, message, CLOSE)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyError(PayloadError):
    """A body refused while it is read (too large, too slow, cut off): `status` (413, 408, 400) and a message
    safe to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> JSONResponse:
        return problem(self.status, self.message, CLOSE)


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The raw body, refused (413) beyond `limit` bytes before and while it streams, and (408) when it has not
    all arrived within `timeout` seconds. Never more than `limit` bytes are held."""
    length = request.headers.get("content-length", "")
    if length.strip().isdigit() and int(length) > limit:
        raise BodyError(413, f"request body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyError(413, f"request body over {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyError(408, f"the request body did not arrive within {timeout:g} s") from None
    except ClientDisconnect:
        raise BodyError(400, "the client went away before the body was sent") from None
    return b"".join(chunks)


SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-gitlab-token", "x-api-key", "x-auth-token"}
)
_SENSITIVE_PARTS = ("signature", "token", "secret", "password", "auth", "cookie", "api-key", "apikey", "session")


def is_sensitive_header(name: str) -> bool:
    """Authorization, cookies, the hosts' signature and token headers, and anything named like a credential."""
    lowered = name.lower()
    return lowered in SENSITIVE_HEADERS or any(part in lowered for part in _SENSITIVE_PARTS)


def safe_headers(headers: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    return {k: v for k, v in headers if not is_sensitive_header(str(k))}
