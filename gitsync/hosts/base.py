"""The git-host provider interface: commit statuses and one sticky pull-request comment, over httpx.

gitsync states are `success | failure | pending | warning | error`; each provider maps them to its host's states
and limits (HOST_APIS.md §5). Every request that does not succeed raises `HostError`, which says whether trying
again can help (`permanent`) and how long the host asked us to wait (`retry_after`).
"""

from __future__ import annotations

import email.utils
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote, urlsplit

from gitsync.errors import GitSyncError

if TYPE_CHECKING:
    import httpx

GitsyncState = Literal["success", "failure", "pending", "warning", "error"]
STATES: tuple[str, ...] = ("success", "failure", "pending", "warning", "error")
PERMANENT_CODES = frozenset({400, 401, 403, 404, 410, 422})
"""Trying again cannot help (a 403 that is a rate limit is the exception: see `_rate_limited`)."""
MAX_RETRY_AFTER = 3600.0
ELLIPSIS = "…"


@dataclass(frozen=True)
class StatusPost:
    commit: str
    context: str
    state: str
    description: str = ""
    target_url: str | None = None


@dataclass(frozen=True)
class CommentResult:
    id: int
    created: bool
    """True when a new comment was posted, False when the earlier one was edited in place."""


class HostError(GitSyncError):
    """A request the host did not accept. `status` is None for timeouts and connection errors."""

    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.permanent = permanent

    def __str__(self) -> str:
        prefix = f"HTTP {self.status}: " if self.status is not None else ""
        return prefix + self.message


def truncate(text: str, limit: int | None) -> str:
    """`text` cut to `limit` characters, ending with an ellipsis when cut."""
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS


def shorten_markdown(body: str, limit: int, note: str = "\n\n… (truncated: the full plan is in `gitsync plan`)") -> str:
    """`body` shortened to fit a host's comment limit (GitHub refuses more than 65,536 characters)."""
    if len(body) <= limit:
        return body
    return body[: max(0, limit - len(note))] + note


def hidden_marker(marker: str) -> str:
    return f"<!-- {marker} -->"


class StatusProvider(ABC):
    """One repository on one host. Subclasses set the paths, states and limits of their host."""

    name: ClassVar[str] = "host"
    default_api_url: ClassVar[str] = ""
    api_prefix: ClassVar[str] = ""
    state_map: ClassVar[dict[str, str]] = {}
    description_limit: ClassVar[int | None] = None
    target_url_limit: ClassVar[int | None] = None
    comment_limit: ClassVar[int] = 65_536
    page_size: ClassVar[int] = 100
    edit_method: ClassVar[str] = "PATCH"

    def __init__(
        self,
        repository: str,
        token: str | None,
        api_url: str | None = None,
        client: httpx.Client | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.repository = repository.strip().strip("/")
        self.token = token
        self.api_url = self.normalise_api_url(api_url or self.default_api_url)
        self._owns_client = client is None
        if client is None:
            import httpx  # imported by the daemon only when a source reports statuses

            client = httpx.Client(timeout=timeout)
        self.client = client
        self.timeout = timeout

    @classmethod
    def normalise_api_url(cls, api_url: str) -> str:
        """The API root: a bare host URL gets the host's API prefix (`/api/v1`, `/api/v4`, `/api/v3`)."""
        url = api_url.rstrip("/")
        if cls.api_prefix and "/api/" not in urlsplit(url).path + "/":
            url += cls.api_prefix
        return url

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    # -- what each host defines -------------------------------------------------------------------------------

    @abstractmethod
    def auth_headers(self) -> dict[str, str]: ...

    @abstractmethod
    def status_path(self, commit: str) -> str: ...

    @abstractmethod
    def status_body(self, post: StatusPost) -> dict[str, Any]: ...

    @abstractmethod
    def comments_path(self, pr_number: int) -> str: ...

    @abstractmethod
    def comment_path(self, pr_number: int, comment_id: int) -> str: ...

    def page_params(self, page: int) -> dict[str, Any]:
        return {"per_page": self.page_size, "page": page}

    def rate_limit_wait(self, response: httpx.Response) -> float | None:
        """Seconds until the host's rate-limit window resets, from its headers (None: no such header)."""
        return None

    # -- the mapping ------------------------------------------------------------------------------------------

    def host_state(self, state: str) -> str:
        if state not in self.state_map:
            raise HostError(f"unknown gitsync state {state!r} (expected one of {', '.join(STATES)})", permanent=True)
        return self.state_map[state]

    def describe(self, post: StatusPost) -> str:
        """The description as posted: `warning` on a host without it says so, then the host's limit applies."""
        text = post.description or ""
        if post.state == "warning" and self.host_state("warning") != "warning" and not text.startswith("warning"):
            text = f"warning: {text}" if text else "warning"
        return truncate(text, self.description_limit)

    def link(self, url: str | None) -> str | None:
        if not url or (self.target_url_limit and len(url) > self.target_url_limit):
            return None  # a cut URL is a broken link: better none
        return url

    # -- the operations ---------------------------------------------------------------------------------------

    def post_status(self, post: StatusPost) -> dict[str, Any]:
        """Create one commit status; returns the host's answer (a status object)."""
        response = self.request("POST", self.status_path(post.commit), json=self.status_body(post))
        return _json(response)

    def upsert_comment(self, pr_number: int, body: str, marker: str) -> CommentResult:
        """Post `body` on pull request `pr_number`, or edit in place the earlier comment holding `marker`.

        The marker is written into the comment as a hidden HTML comment; one marker = one comment, whatever the
        number of pushes. A body over the host's `comment_limit` is refused by the host (HostError, permanent):
        shorten it first with `shorten_markdown(body, provider.comment_limit)`.
        """
        tag = hidden_marker(marker)
        text = body if tag in body else f"{tag}\n{body}"
        existing = self.find_comment(pr_number, tag)
        if existing is None:
            answer = _json(self.request("POST", self.comments_path(pr_number), json={"body": text}))
            return CommentResult(id=int(answer["id"]), created=True)
        self.request(self.edit_method, self.comment_path(pr_number, existing), json={"body": text})
        return CommentResult(id=existing, created=False)

    def find_comment(self, pr_number: int, tag: str) -> int | None:
        """The id of the first comment on the pull request whose body holds `tag` (every page is read)."""
        base = self.api_url + self.comments_path(pr_number)
        url, page = base, 1
        params: dict[str, Any] | None = self.page_params(1)  # None once a `next` link carries the query
        for _ in range(200):
            response = self.request("GET", url, params=params)
            items = _json(response)
            items = items if isinstance(items, list) else []
            for item in items:
                if tag in str(item.get("body") or ""):
                    return int(item["id"])
            next_link = response.links.get("next", {}).get("url")
            if next_link:
                url, params = next_link, None
                continue
            if "link" in response.headers or len(items) < self.page_size:
                return None
            page += 1
            url, params = base, self.page_params(page)
        return None

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; a non-2xx answer, a timeout or a connection error raises HostError."""
        import httpx

        url = path if path.startswith(("http://", "https://")) else self.api_url + path
        headers = {"User-Agent": "gitsync", "Accept": "application/json", **self.auth_headers()}
        try:
            response = self.client.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
        except httpx.TimeoutException as exc:
            raise HostError(f"timed out: {method} {_path_of(url)} ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise HostError(f"cannot reach the host: {method} {_path_of(url)} ({type(exc).__name__}: {exc})") from exc
        if response.is_success:
            return response
        raise self.error_of(response)

    def error_of(self, response: httpx.Response) -> HostError:
        code = response.status_code
        message = _error_message(response)
        wait = _retry_after(response.headers.get("retry-after"))
        limited = code == 429 or (code == 403 and (wait is not None or _rate_limited(response)))
        if limited:
            reset = self.rate_limit_wait(response)
            wait = max(w for w in (wait, reset, 0.0) if w is not None)
            return HostError(f"rate limited: {message}", code, min(wait, MAX_RETRY_AFTER) or None, permanent=False)
        permanent = code in PERMANENT_CODES
        return HostError(message, code, wait if not permanent else None, permanent=permanent)


def _rate_limited(response: httpx.Response) -> bool:
    if response.headers.get("x-ratelimit-remaining") == "0":
        return True
    return "rate limit" in response.text[:2000].lower()


def _retry_after(value: str | None) -> float | None:
    """`Retry-After`: seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def epoch_wait(value: str | None) -> float | None:
    """Seconds from now until a reset header's UTC epoch second (`x-ratelimit-reset`, `RateLimit-Reset`)."""
    if not value:
        return None
    try:
        return max(0.0, float(value) - time.time())
    except ValueError:
        return None


def _error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return (response.text.strip()[:300] or response.reason_phrase) or "error"
    if isinstance(data, dict):
        parts = [str(data.get("message") or data.get("error") or response.reason_phrase)]
        for item in data.get("errors") or []:
            if isinstance(item, dict) and item.get("message"):
                parts.append(str(item["message"]))
            elif isinstance(item, str):
                parts.append(item)
        return ": ".join(parts)[:500]
    return str(data)[:300]


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def _path_of(url: str) -> str:
    return urlsplit(url).path


class OwnerRepoProvider(StatusProvider):
    """Hosts whose API follows GitHub's shape (GitHub and Gitea/Forgejo): `/repos/{owner}/{name}/statuses/{sha}`,
    pull-request comments on the issues endpoints."""

    def _repo(self) -> str:
        owner, _, name = self.repository.partition("/")
        return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"

    def status_path(self, commit: str) -> str:
        return f"{self._repo()}/statuses/{quote(commit, safe='')}"

    def status_body(self, post: StatusPost) -> dict[str, Any]:
        body: dict[str, Any] = {
            "state": self.host_state(post.state),
            "context": post.context,
            "description": self.describe(post),
        }
        link = self.link(post.target_url)
        if link:
            body["target_url"] = link
        return body

    def comments_path(self, pr_number: int) -> str:
        return f"{self._repo()}/issues/{int(pr_number)}/comments"

    def comment_path(self, pr_number: int, comment_id: int) -> str:
        return f"{self._repo()}/issues/comments/{int(comment_id)}"
