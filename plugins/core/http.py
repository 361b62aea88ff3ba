"""HTTP tasks: `Request` and `Download`, with Kestra's `options` object."""

from __future__ import annotations

import contextlib
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field

from plugins.core._props import as_bool, as_int, as_map, as_seconds
from plugins.values import Options, StrMap
from runner.api import RunContext, TaskFailed, TaskKilled
from runner.plugin import Task
from runner.types import Dyn, DynDuration

if TYPE_CHECKING:
    import httpx

HttpMethod = Literal["OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT", "PATCH", "CUSTOM"]


class Timeouts(Options):
    connectTimeout: DynDuration | None = None
    """Time allowed to open the connection."""
    readIdleTimeout: DynDuration | None = None
    """Time allowed between two reads (5 minutes by default)."""


class Proxy(Options):
    type: Dyn[Literal["DIRECT", "HTTP", "SOCKS"]] = "DIRECT"
    address: str | None = None
    port: Dyn[int] | None = None
    username: str | None = None
    password: str | None = None


class BasicAuth(Options):
    type: Literal["BASIC"]
    username: str | None = None
    password: str | None = None


class BearerAuth(Options):
    type: Literal["BEARER"]
    token: str | None = None


class SslOptions(Options):
    insecureTrustAllCertificates: Dyn[bool] | None = None
    """Accept any server certificate (unsafe)."""


class HttpOptions(Options):
    """Client configuration (`options:`); the flat keys at the end are the pre-0.21 names, still accepted."""

    timeout: Timeouts | None = None
    proxy: Proxy | None = None
    auth: Annotated[BasicAuth | BearerAuth, Field(discriminator="type")] | None = None
    ssl: SslOptions | None = None
    followRedirects: Dyn[bool] = True
    enabledTcpExtendedKeepAlive: Dyn[bool] = True
    """TCP keep-alive probes on Kestra's client; gitsync's client (httpx) keeps its own defaults."""
    allowFailed: Dyn[bool] = False
    """Do not fail on a 4xx/5xx response."""
    allowedResponseCodes: Dyn[list[int]] | None = None
    logs: Dyn[list[Literal["REQUEST_HEADERS", "REQUEST_BODY", "RESPONSE_HEADERS", "RESPONSE_BODY"]]] | None = None
    defaultCharset: str | None = None
    readTimeout: DynDuration | None = None
    connectTimeout: DynDuration | None = None
    readIdleTimeout: DynDuration | None = None
    connectionPoolIdleTimeout: DynDuration | None = None
    maxContentLength: Dyn[int] | None = None
    proxyType: Dyn[Literal["DIRECT", "HTTP", "SOCKS"]] | None = None
    proxyAddress: str | None = None
    proxyPort: Dyn[int] | None = None
    proxyUsername: str | None = None
    proxyPassword: str | None = None
    basicAuthUser: str | None = None
    basicAuthPassword: str | None = None
    logLevel: str | None = None


class _Http(Task):
    uri: str
    """The URL to call; rendered."""
    method: Dyn[HttpMethod] = "GET"
    """The HTTP method."""
    body: str | None = None
    """The request body (a string; render a map with `toJson`)."""
    formData: StrMap | None = None
    """Form fields (or files, as `kestra://` URIs); sent as multipart or url-encoded."""
    contentType: str = "application/json"
    """The request Content-Type."""
    headers: StrMap | None = None
    """Request headers."""
    params: StrMap | None = None
    """Query parameters added to the URI."""
    options: HttpOptions | None = None
    """Client options: timeouts, proxy, authentication, redirects, …"""
    sslOptions: SslOptions | None = None
    """Deprecated: use options.ssl."""
    encryptBody: Dyn[bool] = False
    """Store the response body encrypted in the outputs."""

    def _allow_failed(self) -> bool:
        return as_bool(self._options.allowFailed, "options.allowFailed")

    @property
    def _options(self) -> HttpOptions:
        return self.options or HttpOptions()

    @contextlib.contextmanager
    def _send(self, ctx: RunContext) -> Iterator[httpx.Response]:
        import httpx  # when the task runs: validating a flow needs no HTTP client

        """Send the request and yield the streamed response; transport errors become TaskFailed."""
        if as_bool(self.encryptBody, "encryptBody"):
            raise TaskFailed(
                "encryptBody is not supported by gitsync (there is no output encryption key)", permanent=True
            )
        try:
            with httpx.Client(**client_settings(self._options, self.sslOptions)) as client:
                request = build_request(client, self, ctx)
                log_request(ctx, self._options, request)
                response = client.send(request, stream=True)
                try:
                    yield response
                finally:
                    response.close()
        except httpx.TimeoutException as exc:
            raise TaskFailed(f"{self.method} {safe_url(self.uri)} timed out: {_reason(exc)}") from None
        except httpx.InvalidURL as exc:
            raise TaskFailed(f"uri {safe_url(self.uri)!r} is not a valid URL: {exc}", permanent=True) from None
        except httpx.HTTPError as exc:
            permanent = permanent_transport_error(exc)
            raise TaskFailed(
                f"{self.method} {safe_url(self.uri)} failed: {_reason(exc)}", permanent=permanent
            ) from None

    def _status_ok(self, code: int, allow_failed: bool) -> bool:
        """allowedResponseCodes when given, else any code below 400 (or any code at all with allowFailed)."""
        allowed = self._options.allowedResponseCodes
        if allowed is not None and allowed != "":
            return code in {as_int(c, "options.allowedResponseCodes") for c in _as_list(allowed)}
        return code < 400 or allow_failed

    def _fail(self, response: httpx.Response, body: str | None) -> TaskFailed:
        code = response.status_code
        snippet = f": {body[:200]}" if body else ""
        return TaskFailed(
            f"Failed http request with response code '{code}' from {safe_url(str(response.request.url))}{snippet}",
            outputs={"code": code, "headers": response_headers(response), "body": body},
            permanent=400 <= code < 500 and code not in TRANSIENT_4XX,
        )


class Request(_Http):
    """Send an HTTP request; the response is the `code`, `headers` and `body` outputs."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.http.Request"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.fs.http.Request",)

    allowFailed: Dyn[bool] = False
    """Deprecated: use options.allowFailed."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        with self._send(ctx) as response:
            content = read_limited(response, self._options, ctx)
        body = decode_body(response, content, self._options.defaultCharset)
        log_response(ctx, self._options, response, body)
        if not self._status_ok(response.status_code, self._allow_failed() or as_bool(self.allowFailed, "allowFailed")):
            raise self._fail(response, body)
        outputs: dict[str, Any] = {
            "uri": str(response.request.url),
            "code": response.status_code,
            "headers": response_headers(response),
            "body": body,
        }
        if self.formData:
            outputs["formData"] = as_map(self.formData, "formData")
        return outputs


class Download(_Http):
    """Download a file to storage; its URI is the `uri` output."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.http.Download"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.fs.http.Download",)

    failOnEmptyResponse: Dyn[bool] = True
    """Fail when the response has no body."""
    saveAs: str | None = None
    """File name to store the download under."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="download-") as scratch:
            target = Path(scratch) / "body"
            with self._send(ctx) as response:
                if not self._status_ok(response.status_code, self._allow_failed()):
                    raise self._fail(response, decode_body(response, read_limited(response, self._options, ctx), None))
                length = stream_to_file(response, target, self._options, ctx)
            log_response(ctx, self._options, response, None)
            if length == 0:
                if as_bool(self.failOnEmptyResponse, "failOnEmptyResponse"):
                    raise TaskFailed(f"No response from server: {safe_url(self.uri)} answered an empty body")
                ctx.logger.warn(f"File downloaded from {safe_url(self.uri)} is empty")
            uri = ctx.storage.put(target, self.saveAs or download_name(response))
        ctx.logger.debug(f"Downloaded {length} bytes to {uri}")
        return {"uri": uri, "code": response.status_code, "length": length, "headers": response_headers(response)}


DEFAULT_CONNECT_TIMEOUT = 30.0
DEFAULT_READ_TIMEOUT = 300.0
"""Kestra's readIdleTimeout default (5 minutes)."""
CHUNK = 64 * 1024


TRANSIENT_4XX = frozenset({408, 425, 429})
"""The 4xx answers that may pass on another attempt (Request Timeout, Too Early, Too Many Requests); every other
4xx is a permanent failure (`TaskFailed.permanent`): the same request gets the same answer."""


def permanent_transport_error(exc: BaseException) -> bool:
    import httpx

    """A transport error that trying again does not cure: a refused connection, a host name that does not exist
    (not a name server that fails for now: EAI_AGAIN), a scheme httpx cannot speak."""
    if isinstance(exc, httpx.UnsupportedProtocol):
        return True
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError):
            return True
        if isinstance(cause, socket.gaierror):
            return cause.errno != socket.EAI_AGAIN
        cause = cause.__cause__ or cause.__context__
    return False


def _reason(exc: Exception) -> str:
    import httpx

    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError) and "refused" in text.lower():
        return f"connection refused ({text})"
    return text


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [part for part in re.split(r"[\s,\[\]]+", str(value)) if part]


def safe_url(url: str) -> str:
    """The URL with any password of its user info hidden (the engine masks known secrets on top)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL urllib can read: hide whatever sits between `//user:` and `@`
        return re.sub(r"(//[^/:@]*:)[^/@]*@", r"\1***@", url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def client_settings(options: HttpOptions, legacy_ssl: SslOptions | None) -> dict[str, Any]:
    """httpx.Client arguments from Kestra's `options` (timeouts, TLS, redirects, proxy, auth)."""
    import httpx

    timeouts = options.timeout or Timeouts()
    connect = as_seconds(timeouts.connectTimeout or options.connectTimeout, "options.timeout.connectTimeout")
    read = as_seconds(
        timeouts.readIdleTimeout or options.readIdleTimeout or options.readTimeout, "options.timeout.readIdleTimeout"
    )
    connect = connect or DEFAULT_CONNECT_TIMEOUT
    read = read or DEFAULT_READ_TIMEOUT
    ssl = options.ssl or legacy_ssl or SslOptions()
    insecure = ssl.insecureTrustAllCertificates is not None and as_bool(
        ssl.insecureTrustAllCertificates, "ssl.insecureTrustAllCertificates"
    )
    settings: dict[str, Any] = {
        "timeout": httpx.Timeout(connect=connect, read=read, write=read, pool=connect),
        "verify": not insecure,
        "follow_redirects": as_bool(options.followRedirects, "options.followRedirects"),
        "trust_env": False,
    }
    proxy = proxy_url(options)
    if proxy:
        settings["proxy"] = proxy
    auth = options.auth
    if isinstance(auth, BasicAuth):
        settings["auth"] = httpx.BasicAuth(auth.username or "", auth.password or "")
    elif options.basicAuthUser:
        settings["auth"] = httpx.BasicAuth(options.basicAuthUser, options.basicAuthPassword or "")
    return settings


def proxy_url(options: HttpOptions) -> str | None:
    proxy = options.proxy or Proxy(
        type=options.proxyType or "DIRECT",
        address=options.proxyAddress,
        port=options.proxyPort,
        username=options.proxyUsername,
        password=options.proxyPassword,
    )
    kind = str(proxy.type).upper()
    if kind == "DIRECT" or not proxy.address:
        return None
    scheme = "socks5" if kind == "SOCKS" else "http"
    credentials = f"{proxy.username}:{proxy.password or ''}@" if proxy.username else ""
    port = f":{as_int(proxy.port, 'options.proxy.port')}" if proxy.port else ""
    return f"{scheme}://{credentials}{proxy.address}{port}"


def build_request(client: httpx.Client, task: _Http, ctx: RunContext) -> httpx.Request:
    """The request: method, URI and params, headers, then a body, a form, or nothing."""
    method = str(task.method).upper()
    if method == "CUSTOM":
        raise TaskFailed(
            "method CUSTOM is not supported; use one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS", permanent=True
        )
    try:
        scheme = urlsplit(task.uri).scheme
    except ValueError as exc:
        raise TaskFailed(f"uri {safe_url(task.uri)!r} is not a valid URL: {exc}", permanent=True) from None
    if scheme not in ("http", "https"):
        raise TaskFailed(f"uri must be an http:// or https:// URL, got {safe_url(task.uri)!r}", permanent=True)
    headers = {str(k): str(v) for k, v in as_map(task.headers, "headers").items()}
    auth = (task.options or HttpOptions()).auth
    if isinstance(auth, BearerAuth):
        headers["Authorization"] = f"Bearer {auth.token or ''}"
    params = {str(k): v for k, v in as_map(task.params, "params").items()}
    extra = request_content(task, ctx, headers)
    return client.build_request(method, task.uri, headers=headers, params=params or None, **extra)


def request_content(task: _Http, ctx: RunContext, headers: dict[str, str]) -> dict[str, Any]:
    """httpx content arguments: `formData` (multipart when asked or when a value is a file URI) or `body`."""
    if task.formData:
        form = as_map(task.formData, "formData")
        files = {k: v for k, v in form.items() if isinstance(v, str) and v.startswith("kestra://")}
        if files or task.contentType.lower().startswith("multipart/"):
            fields: dict[str, Any] = {k: (None, str(v)) for k, v in form.items() if k not in files}
            for name, uri in files.items():
                path = ctx.storage.path(uri)
                fields[name] = (path.name, path.read_bytes())
            return {"files": fields}
        return {"data": {k: str(v) for k, v in form.items()}}
    if task.body is not None:
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = task.contentType
        return {"content": task.body.encode("utf-8")}
    return {}


def _chunks(response: httpx.Response, options: HttpOptions, ctx: RunContext) -> Iterator[bytes]:
    """The body in chunks; stops the task when it is cancelled or the body exceeds maxContentLength."""
    limit = as_int(options.maxContentLength, "options.maxContentLength") if options.maxContentLength else None
    size = 0
    for chunk in response.iter_bytes(CHUNK):
        if ctx.cancelled.is_set():
            raise TaskKilled("the download was cancelled")
        size += len(chunk)
        if limit is not None and size > limit:
            raise TaskFailed(f"the response body is larger than maxContentLength ({limit} bytes)")
        yield chunk


def read_limited(response: httpx.Response, options: HttpOptions, ctx: RunContext) -> bytes:
    return b"".join(_chunks(response, options, ctx))


def stream_to_file(response: httpx.Response, target: Path, options: HttpOptions, ctx: RunContext) -> int:
    length = 0
    with target.open("wb") as out:
        for chunk in _chunks(response, options, ctx):
            out.write(chunk)
            length += len(chunk)
    return length


def decode_body(response: httpx.Response, content: bytes, default_charset: str | None) -> str | None:
    """The body as text (Kestra outputs a string); None when the response has no body."""
    if not content:
        return None
    encoding = response.charset_encoding or default_charset or "utf-8"
    try:
        return content.decode(encoding, errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


def response_headers(response: httpx.Response) -> dict[str, list[str]]:
    """Header name (as the server wrote it) -> its values, like Kestra's `Map<String, List<String>>`."""
    out: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for raw_name, raw_value in response.headers.raw:
        name = raw_name.decode("latin-1")
        key = names.setdefault(name.lower(), name)
        out.setdefault(key, []).append(raw_value.decode("latin-1"))
    return out


def download_name(response: httpx.Response) -> str:
    """The file name: Content-Disposition's filename, else the URL path's last part, else `download`."""
    disposition = response.headers.get("content-disposition", "")
    match = re.search(r"filename\*=(?:UTF-8'')?([^;]+)|filename=\"?([^\";]+)\"?", disposition, re.IGNORECASE)
    candidate = unquote((match.group(1) or match.group(2)).strip()) if match else ""
    if not candidate:
        candidate = unquote(urlsplit(str(response.request.url)).path.rstrip("/").rsplit("/", 1)[-1])
    candidate = Path(candidate.replace("\\", "/")).name
    return candidate if candidate not in ("", ".", "..") else "download"


def log_request(ctx: RunContext, options: HttpOptions, request: httpx.Request) -> None:
    import httpx

    wanted = set(options.logs or [])
    if "REQUEST_HEADERS" in wanted:
        ctx.logger.info(f"Request headers: {dict(request.headers)}")
    if "REQUEST_BODY" in wanted and isinstance(request.stream, httpx.ByteStream):
        ctx.logger.info(f"Request body: {request.read().decode('utf-8', errors='replace')}")


def log_response(ctx: RunContext, options: HttpOptions, response: httpx.Response, body: str | None) -> None:
    ctx.logger.debug(f"{response.request.method} {safe_url(str(response.request.url))} -> {response.status_code}")
    wanted = set(options.logs or [])
    if "RESPONSE_HEADERS" in wanted:
        ctx.logger.info(f"Response headers: {response_headers(response)}")
    if "RESPONSE_BODY" in wanted and body is not None:
        ctx.logger.info(f"Response body: {body}")
