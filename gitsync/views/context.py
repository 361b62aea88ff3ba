"""What every view reads from: the state, and how a commit links to its page on the git host."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from gitsync.config import Settings
from gitsync.redact import redact_url
from gitsync.state.database import Store
from gitsync.views.models import CommitRef

_KNOWN_HOSTS = {"github.com": "github", "gitlab.com": "gitlab", "codeberg.org": "gitea", "gitea.com": "gitea"}


def web_url(repo: str) -> str | None:
    """The repository's web page from its clone URL (https or scp-like ssh), credentials dropped; None for a path."""
    text = repo.strip()
    if text.startswith(("http://", "https://")):
        parts = urlsplit(redact_url(text))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        path = parts.path.rstrip("/")
    elif "@" in text and ":" in text.split("@", 1)[1] and "://" not in text:  # git@github.com:acme/flows.git
        host, _, path = text.split("@", 1)[1].partition(":")
        port, path = "", "/" + path.strip("/")
    elif text.startswith("ssh://"):
        parts = urlsplit(text)
        host, port, path = parts.hostname or "", "", parts.path.rstrip("/")
    else:
        return None
    if not host or not path.strip("/"):
        return None
    path = path.removesuffix(".git")
    return f"https://{host}{port}{path}" if not text.startswith("http://") else f"http://{host}{port}{path}"


def commit_url(repo: str, sha: str, provider: str | None = None) -> str | None:
    """The commit's page: `<web>/commit/<sha>` (GitHub, Gitea, Forgejo), `<web>/-/commit/<sha>` (GitLab)."""
    base = web_url(repo)
    if base is None:
        return None
    host = urlsplit(base).hostname or ""
    kind = provider or _KNOWN_HOSTS.get(host) or ("gitlab" if "gitlab" in host else None)
    if kind is None:
        return None
    return f"{base}/-/commit/{sha}" if kind == "gitlab" else f"{base}/commit/{sha}"


@dataclass(frozen=True)
class ViewContext:
    store: Store
    repos: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    """source name -> (repo URL, provider) from the settings."""

    @classmethod
    def of(cls, settings: Settings, store: Store) -> ViewContext:
        repos = {s.name: (s.repo, s.status.provider if s.status else None) for s in settings.sources}
        return cls(store, repos)

    def commit(self, source: str | None, sha: str) -> CommitRef:
        repo, provider = self.repos.get(source or "", ("", None))
        return CommitRef(sha=sha, url=commit_url(repo, sha, provider) if repo and sha else None)
