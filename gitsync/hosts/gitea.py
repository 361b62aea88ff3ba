"""Gitea and Forgejo: HOST_APIS.md §2.

`POST /api/v1/repos/{owner}/{repo}/statuses/{sha}` with `Authorization: token`, body `CreateStatusOption`
(states pending|success|error|failure|warning: Gitea has `warning`). The description has no documented limit;
255 is kept as a safe bound. Pull-request comments are issue comments, edited with `PATCH /issues/comments/{id}`
(not in the stored schema extract: [U] in HOST_APIS).
"""

from __future__ import annotations

from typing import Any, ClassVar

from gitsync.hosts.base import OwnerRepoProvider


class GiteaProvider(OwnerRepoProvider):
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

    def page_params(self, page: int) -> dict[str, Any]:
        return {"limit": self.page_size, "page": page}
