"""GitLab: HOST_APIS.md §3.

`POST /api/v4/projects/:id/statuses/:sha` (`:id` a number or the URL-encoded path `group%2Fproject`) with
`PRIVATE-TOKEN`; states pending|running|success|failed|canceled|skipped: gitsync's pending is `running` (the run
has started), failure and error are `failed`; description and target_url at most 255 characters. A 400 "Cannot
transition status" means the commit already shows that state (Atlantis treats it as success); 409 is a race
between two writers and is retried. The merge-request comment is a note, edited with `PUT …/notes/:note_id`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from gitsync.hosts.base import HostError, StatusPost, StatusProvider, epoch_wait

if TYPE_CHECKING:
    import httpx


class GitLabProvider(StatusProvider):
    name: ClassVar[str] = "gitlab"
    default_api_url: ClassVar[str] = "https://gitlab.com/api/v4"
    api_prefix: ClassVar[str] = "/api/v4"
    state_map: ClassVar[dict[str, str]] = {
        "success": "success",
        "failure": "failed",
        "pending": "running",
        "warning": "success",  # no warning state (allow_failure is not settable here)
        "error": "failed",
    }
    description_limit: ClassVar[int | None] = 255
    target_url_limit: ClassVar[int | None] = 255
    comment_limit: ClassVar[int] = 1_000_000
    edit_method: ClassVar[str] = "PUT"

    def auth_headers(self) -> dict[str, str]:
        return {"PRIVATE-TOKEN": self.token} if self.token else {}

    def project(self) -> str:
        """The project id as it goes in a path: a number as is, `group/sub/project` URL-encoded."""
        return quote(self.repository, safe="")

    def status_path(self, commit: str) -> str:
        return f"/projects/{self.project()}/statuses/{quote(commit, safe='')}"

    def status_body(self, post: StatusPost) -> dict[str, Any]:
        body: dict[str, Any] = {
            "state": self.host_state(post.state),
            "name": post.context,
            "description": self.describe(post),
        }
        link = self.link(post.target_url)
        if link:
            body["target_url"] = link
        return body

    def post_status(self, post: StatusPost) -> dict[str, Any]:
        try:
            return super().post_status(post)
        except HostError as exc:
            if exc.status == 400 and "cannot transition status" in exc.message.lower():
                return {"status": self.host_state(post.state), "note": exc.message}
            raise

    def comments_path(self, pr_number: int) -> str:
        return f"/projects/{self.project()}/merge_requests/{int(pr_number)}/notes"

    def comment_path(self, pr_number: int, comment_id: int) -> str:
        return f"{self.comments_path(pr_number)}/{int(comment_id)}"

    def rate_limit_wait(self, response: httpx.Response) -> float | None:
        return epoch_wait(response.headers.get("ratelimit-reset"))

    def error_of(self, response: httpx.Response) -> HostError:
        error = super().error_of(response)
        if response.status_code == 409:  # a concurrent change of the commit's pipeline status: try again
            error.permanent = False
        return error
