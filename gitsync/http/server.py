"""The uvicorn server the daemon runs, with limits on what a client may hold.

    MAX_HEAD_BYTES      32 KiB  a request line plus headers (h11_max_incomplete_event_size): larger is a 400
    KEEP_ALIVE_TIMEOUT  5 s     an idle keep-alive connection is closed
    MAX_CONNECTIONS     512     connections and requests in progress; beyond, uvicorn answers 503
    http.header_timeout 10 s    from a connection's (or a keep-alive request's) first byte to the end of its headers
    http.body_timeout   30 s    to send the body (routes answer 408); the connection is closed this long plus
                                BODY_GRACE after the headers whatever the route did

uvicorn itself has no header or body deadline: a client that sends one byte a second would hold its connection
forever. `GuardedH11Protocol` adds both on top of uvicorn's h11 protocol.

`serve` runs it on its own thread and returns once it answers, so the daemon starts syncing only after that.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
import time
from http.client import HTTPConnection
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from gitsync.config import HttpConfig
from gitsync.errors import OwnerConflict

log = logging.getLogger("gitsync.http")

MAX_HEAD_BYTES = 32 * 1024
KEEP_ALIVE_TIMEOUT = 5
MAX_CONNECTIONS = 512
BODY_GRACE = 5.0


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on the request head and on the whole request."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: Any = None
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._waiting_for = None

    def _watch(self) -> None:
        """Arm the deadline that fits the client's state: its head (IDLE: from the connection or the previous
        response on), its body (SEND_BODY: from the end of the head on); none once the request is in."""
        if self.transport is None or self.transport.is_closing():
            return self._cancel()
        state = self.conn.their_state
        if state is h11.IDLE:
            wanted, delay = "head", self.header_timeout
        elif state is h11.SEND_BODY:
            wanted, delay = "body", self.body_timeout + BODY_GRACE
        else:
            return self._cancel()
        if self._waiting_for != wanted:
            self._cancel()
            self._waiting_for = wanted
            self._deadline = self.loop.call_later(delay, self._expire)

    def _expire(self) -> None:
        self._deadline = None
        self._waiting_for = None
        if not self.transport.is_closing():
            self.transport.close()  # the client took too long: nothing more is read from it


def bind(http: HttpConfig) -> socket.socket:
    """The listening socket, bound before the daemon changes anything: a port in use is an `OwnerConflict`
    that names it (uvicorn alone would log it on its thread and leave the daemon running without HTTP)."""
    family = socket.AF_INET6 if ":" in http.host else socket.AF_INET
    try:
        sock = socket.create_server((http.host, http.port), family=family, backlog=2048)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise OwnerConflict(
                f"http.listen {http.listen}: the port is already in use (another gitsync daemon, or another "
                "service); stop it, or give this daemon another address with --listen HOST:PORT"
            ) from None
        raise OwnerConflict(f"http.listen {http.listen}: cannot listen there: {exc.strerror or exc}") from None
    # accepted connections inherit it: asyncio sets TCP_NODELAY only on sockets whose `proto` says TCP, and this
    # one's is 0, so without it each response's body waited for the client's delayed ACK (about 40 ms)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def uvicorn_config(app: Any, http: HttpConfig) -> uvicorn.Config:
    protocol = type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"header_timeout": http.header_timeout, "body_timeout": http.body_timeout},
    )
    return uvicorn.Config(
        app,
        host=http.host,
        port=http.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http=protocol,
        ws="none",  # no route speaks WebSocket: its protocol modules (websockets, wsproto) are never loaded
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
        limit_concurrency=MAX_CONNECTIONS,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
    )


def serve(
    app: Any, http: HttpConfig, sock: socket.socket | None, wait: float
) -> tuple[uvicorn.Server, threading.Thread]:
    """uvicorn serving `app` on its own thread (on `sock`, bound already), returned once it answers (at most
    `wait` seconds). It answers one GET /healthz of our own first: the one-time costs of a first request (the
    route's thread pool, the modules behind it) are paid before the daemon starts its first sync, which would
    compete with them for the interpreter, so a client's first /healthz is answered at once."""
    server = uvicorn.Server(uvicorn_config(app, http))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock] if sock else None}, name="http", daemon=True)
    thread.start()
    deadline = time.monotonic() + wait
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.002)
    if server.started and sock is not None:
        _answer_once(sock, deadline)
    return server, thread


def _answer_once(sock: socket.socket, deadline: float) -> None:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    conn = HTTPConnection(host, port, timeout=max(0.1, deadline - time.monotonic()))
    try:
        conn.request("GET", "/healthz")
        conn.getresponse().read()
    except OSError as exc:  # not fatal: HTTP is up, clients will be answered
        log.debug("the first /healthz of our own failed: %s", exc)
    finally:
        conn.close()
