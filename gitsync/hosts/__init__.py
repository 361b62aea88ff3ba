"""Git-host providers (GitHub, Gitea/Forgejo, GitLab): commit statuses and one sticky pull-request comment.

`provider_for(source)` builds the provider of a source from its `status:` configuration.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from gitsync.config import SourceConfig
from gitsync.errors import ConfigError
from gitsync.hosts.base import (
    STATES,
    CommentResult,
    HostError,
    StatusPost,
    StatusProvider,
    hidden_marker,
    shorten_markdown,
    truncate,
)
from gitsync.hosts.gitea import GiteaProvider
from gitsync.hosts.github import GitHubProvider
from gitsync.hosts.gitlab import GitLabProvider

if TYPE_CHECKING:
    import httpx

PROVIDERS: dict[str, type[StatusProvider]] = {
    "github": GitHubProvider,
    "gitea": GiteaProvider,
    "gitlab": GitLabProvider,
}


class ProviderUnavailable(ConfigError):
    """The source reports no statuses (no `status:` block) or its token is missing; the reason is shown."""


def provider_for(source: SourceConfig, client: httpx.Client | None = None, timeout: float = 10.0) -> StatusProvider:
    """The provider of `source` (raises ProviderUnavailable with the reason when there is none)."""
    config = source.status
    if config is None:
        raise ProviderUnavailable("no status provider configured")
    token_env = config.token_env or source.token_env
    token = os.environ.get(token_env) if token_env else None
    if not token:
        where = f"environment variable {token_env} is not set" if token_env else "no status.token_env configured"
        raise ProviderUnavailable(f"no token for the {config.provider} status provider: {where}")
    cls = PROVIDERS[config.provider]
    return cls(config.repository, token, config.api_url, client=client, timeout=timeout)


__all__ = [
    "PROVIDERS",
    "STATES",
    "CommentResult",
    "GitHubProvider",
    "GitLabProvider",
    "GiteaProvider",
    "HostError",
    "ProviderUnavailable",
    "StatusPost",
    "StatusProvider",
    "hidden_marker",
    "provider_for",
    "shorten_markdown",
    "truncate",
]
