"""Gitea and Forgejo: HOST_APIS.md §2.

`POST /api/v1/repos/{owner}/{repo}/statuses/{sha}` with `Authorization: token`, body `CreateStatusOption`
(states pending|success|error|failure|warning: Gitea has `warning`). The description has no documented limit;
255 is kept as a safe bound. Pull-request comments are issue comments, edited with `PATCH /issues/comments/{id}`
(not in the stored schema extract: [U] in HOST_APIS).
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from gitsync.hosts.base import StatusPost, StatusProvider


class GiteaProvider(StatusProvider):
    name: ClassVar[str] = "gitea"
    default_api_url: ClassVar[str] = "https://gitea.com/api/v1"
    api_prefix: ClassVar[str] = "/api/v1"
    state_map: ClassVar[dict[str, str]] = {
        "success": "success",
        "failure": "failure",
        "pending": "pending",
        "warning": "warning",
        "error": "error",
    }
    description_limit: ClassVar[int | None] = 255
    comment_limit: ClassVar[int] = 65_536
    page_size: ClassVar[int] = 50  # Gitea's MAX_RESPONSE_ITEMS default

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"} if self.token else {}

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

    def page_params(self, page: int) -> dict[str, Any]:
        return {"limit": self.page_size, "page": page}

    def comments_path(self, pr_number: int) -> str:
        return f"{self._repo()}/issues/{int(pr_number)}/comments"

    def comment_path(self, pr_number: int, comment_id: int) -> str:
        return f"{self._repo()}/issues/comments/{int(comment_id)}"
