"""GitHub and GitHub Enterprise Server (through its API base URL): HOST_APIS.md §1.

`POST /repos/{owner}/{repo}/statuses/{sha}` with `Authorization: Bearer`, states error|failure|pending|success,
description at most 140 characters (422 beyond, not in the OpenAPI spec); the pull-request comment is an issue
comment (`/issues/{n}/comments`, at most 65,536 characters) edited with `PATCH /issues/comments/{id}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from gitsync.hosts.base import OwnerRepoProvider, epoch_wait

if TYPE_CHECKING:
    import httpx


class GitHubProvider(OwnerRepoProvider):
    name: ClassVar[str] = "github"
    default_api_url: ClassVar[str] = "https://api.github.com"
    state_map: ClassVar[dict[str, str]] = {
        "success": "success",
        "failure": "failure",
        "pending": "pending",
        "warning": "success",  # no warning state: success, and the description says "warning"
        "error": "error",
    }
    description_limit: ClassVar[int | None] = 140
    comment_limit: ClassVar[int] = 65_536

    @classmethod
    def normalise_api_url(cls, api_url: str) -> str:
        """github.com's API is at the host root; GitHub Enterprise Server's under `/api/v3` (added to a bare host
        URL; a loopback address is taken as it is, for a local stand-in)."""
        url = api_url.rstrip("/")
        parts = urlsplit(url)
        enterprise = parts.hostname not in ("api.github.com", "127.0.0.1", "localhost", "::1")
        if enterprise and not parts.path:
            url += "/api/v3"
        return url

    def auth_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def rate_limit_wait(self, response: httpx.Response) -> float | None:
        return epoch_wait(response.headers.get("x-ratelimit-reset"))
