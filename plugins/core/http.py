"""HTTP tasks: `Request` and `Download`, with Kestra's `options` object."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from plugins.values import Options, StrMap
from runner.plugin import Task
from runner.types import Dyn, DynDuration

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


class Request(_Http):
    """Send an HTTP request; the response is the `code`, `headers` and `body` outputs."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.http.Request"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.fs.http.Request",)

    allowFailed: Dyn[bool] = False
    """Deprecated: use options.allowFailed."""


class Download(_Http):
    """Download a file to storage; its URI is the `uri` output."""

    type_name: ClassVar[str] = "io.kestra.plugin.core.http.Download"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.fs.http.Download",)

    failOnEmptyResponse: Dyn[bool] = True
    """Fail when the response has no body."""
    saveAs: str | None = None
    """File name to store the download under."""
