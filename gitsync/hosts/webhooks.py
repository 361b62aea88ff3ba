"""Webhook deliveries from GitHub, Gitea/Forgejo and GitLab: verify them, then read them into a `WebhookEvent`.

Pure: no I/O, no clock, no logging. Each host has `verify(headers, body, secret)`, which raises `SignatureError`
unless the delivery proves it knows the source's secret, and `parse(headers, body)`, which returns the event (or
None when the request carries no event header of that host). A body is verified before it is parsed: the raw
bytes are checked against every candidate source's secret (`verify_any`), so an unsigned body costs one HMAC per
secret and no JSON parsing. Only the headers and the first byte (`payload_shape_error`) are looked at before that.
JSON nests at most `MAX_JSON_DEPTH` levels (`parse_json`): deeper is a `PayloadError`, never a RecursionError.

    GitHub  X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>   X-GitHub-Event   X-GitHub-Delivery
    Gitea   X-Gitea-Signature (or X-Forgejo-Signature): <hex HMAC-SHA256>     X-Gitea-Event    X-Gitea-Delivery
    GitLab  X-Gitlab-Token: <the secret itself>                               X-Gitlab-Event   Idempotency-Key,
                                                                                               X-Gitlab-Event-UUID
Every comparison with a secret goes through `hmac.compare_digest` (constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from gitsync.config import Settings, SourceConfig
from gitsync.errors import GitSyncError

HostName = Literal["github", "gitea", "gitlab"]
Kind = Literal["push", "pull_request", "ping", "other"]
Headers = Mapping[str, str]

ZERO_SHA = "0" * 40
MAX_JSON_DEPTH = 64
"""How deeply a JSON body (webhook payload, trigger body, inputs) may nest: hosts' payloads nest under 10."""


class WebhookError(GitSyncError):
    """A delivery that cannot be accepted; `str(error)` is safe to show the sender (it never holds a secret)."""


class SignatureError(WebhookError):
    """The delivery is unsigned, or signed with another secret."""


class PayloadError(WebhookError):
    """The body is not an event payload this host sends."""


class NestingError(PayloadError):
    """JSON nested deeper than `MAX_JSON_DEPTH`."""


@dataclass(frozen=True)
class Repository:
    """The repository an event concerns, named as the payload names it (any field may be missing)."""

    full_name: str | None = None
    """`owner/name` (GitLab: `group/subgroup/project`)."""
    html_url: str | None = None
    clone_url: str | None = None
    ssh_url: str | None = None
    default_branch: str | None = None

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(u for u in (self.html_url, self.clone_url, self.ssh_url) if u)


@dataclass(frozen=True)
class PullRequest:
    number: int
    action: str
    """As the host says it: GitHub/Gitea `opened`, `synchronize(d)`, `closed`…; GitLab `open`, `update`, `merge`…"""
    head_sha: str
    head_ref: str
    base_ref: str
    head_repo: str | None = None
    """`owner/name` of the head's repository: differs from the base repository for a fork."""
    head_clone_url: str | None = None


@dataclass(frozen=True)
class WebhookEvent:
    host: HostName
    kind: Kind
    event: str
    """The host's own event name (`push`, `Merge Request Hook`, `create`…)."""
    delivery: str | None
    repository: Repository
    ref: str | None = None
    """Full ref of a push: `refs/heads/main`, `refs/tags/v1`."""
    before: str | None = None
    after: str | None = None
    pull_request: PullRequest | None = None

    @property
    def branch(self) -> str | None:
        """The branch a push went to; None for a tag or a non-push event."""
        if self.ref and self.ref.startswith("refs/heads/"):
            return self.ref.removeprefix("refs/heads/")
        return None

    @property
    def deleted(self) -> bool:
        return self.after == ZERO_SHA


# -- signatures -----------------------------------------------------------------------------------------------------


def _get(headers: Headers, *names: str) -> str | None:
    """The first of `names` present (case-insensitively), stripped; None when none is there or all are empty."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in names:
        value = lowered.get(name.lower())
        if value and value.strip():
            return value.strip()
    return None


def _require_secret(secret: str | None) -> str:
    if not secret:
        raise SignatureError("no webhook secret is configured for this source; unsigned deliveries are refused")
    return secret


def _hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _same(expected: str, given: str) -> bool:
    # bytes, so a non-ASCII header value compares as unequal instead of raising TypeError
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "replace"))


def _check_hmac(body: bytes, secret: str, given: str | None, header: str) -> None:
    if given is None:
        raise SignatureError(f"missing {header} header: configure the webhook with the source's secret")
    if not _same(_hmac_hex(secret, body), given.lower()):
        raise SignatureError(f"{header} does not match: the webhook's secret differs from the source's")


def verify_github(headers: Headers, body: bytes, secret: str | None) -> None:
    secret = _require_secret(secret)
    given = _get(headers, "X-Hub-Signature-256")
    if given is not None:
        prefix, _, digest = given.partition("=")
        if prefix.lower() != "sha256" or not digest:
            raise SignatureError("X-Hub-Signature-256 must read sha256=<hex digest>")
        given = digest
    _check_hmac(body, secret, given, "X-Hub-Signature-256")


def verify_gitea(headers: Headers, body: bytes, secret: str | None) -> None:
    secret = _require_secret(secret)
    _check_hmac(body, secret, _get(headers, "X-Gitea-Signature", "X-Forgejo-Signature"), "X-Gitea-Signature")


def verify_gitlab(headers: Headers, body: bytes, secret: str | None) -> None:
    secret = _require_secret(secret)
    given = _get(headers, "X-Gitlab-Token")
    if given is None:
        raise SignatureError("missing X-Gitlab-Token header: set the webhook's secret token to the source's secret")
    if not _same(secret, given):
        raise SignatureError("X-Gitlab-Token does not match the source's webhook secret")


# -- payloads -------------------------------------------------------------------------------------------------------


def json_depth_over(value: Any, limit: int) -> bool:
    """True when `value` nests more than `limit` lists/objects deep (iterative: no recursion on hostile data)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_json(text: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads`, with ValueError/UnicodeDecodeError and too deep a nesting as a `PayloadError` saying why."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise NestingError(f"the JSON nests more than {max_depth} levels deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"the body is not JSON: {exc}") from None
    if json_depth_over(data, max_depth):
        raise NestingError(f"the JSON nests more than {max_depth} levels deep")
    return data


_STARTS_AN_OBJECT = re.compile(rb"[ \t\r\n]*\{")


def payload_shape_error(headers: Headers, body: bytes) -> str | None:
    """Why `body` cannot be a payload, judged from the content type and its first byte (no parsing); else None."""
    content_type = (_get(headers, "Content-Type") or "").lower()
    if content_type.startswith("application/x-www-form-urlencoded"):
        return None if b"payload=" in body else "form-encoded delivery without a 'payload' field"
    if _STARTS_AN_OBJECT.match(body) is None:
        return "the body is not JSON: a payload is a JSON object"
    return None


def _load(headers: Headers, body: bytes) -> dict[str, Any]:
    """The JSON payload; GitHub's form encoding (`payload=<json>`) is accepted too."""
    content_type = (_get(headers, "Content-Type") or "").lower()
    text = body
    if content_type.startswith("application/x-www-form-urlencoded"):
        values = parse_qs(body.decode("utf-8", "replace")).get("payload")
        if not values:
            raise PayloadError("form-encoded delivery without a 'payload' field")
        text = values[0].encode("utf-8")
    data = parse_json(text)
    if not isinstance(data, dict):
        raise PayloadError("the payload must be a JSON object")
    return data


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _hub_repository(data: Any) -> Repository:
    """GitHub and Gitea describe a repository with the same keys (anything but an object reads as an empty one)."""
    repo = _dict(data)
    return Repository(
        full_name=_str(repo.get("full_name")),
        html_url=_str(repo.get("html_url")),
        clone_url=_str(repo.get("clone_url")),
        ssh_url=_str(repo.get("ssh_url")),
        default_branch=_str(repo.get("default_branch")),
    )


def _hub_pull_request(data: dict[str, Any]) -> PullRequest:
    pr = _dict(data.get("pull_request"))
    head, base = _dict(pr.get("head")), _dict(pr.get("base"))
    head_repo = _dict(head.get("repo"))
    return PullRequest(
        number=_int(data.get("number")) or _int(pr.get("number")),
        action=_str(data.get("action")) or "",
        head_sha=_str(head.get("sha")) or "",
        head_ref=_str(head.get("ref")) or "",
        base_ref=_str(base.get("ref")) or "",
        head_repo=_str(head_repo.get("full_name")),
        head_clone_url=_str(head_repo.get("clone_url")),
    )


def _event(
    host: HostName,
    kind: Kind,
    event: str,
    delivery: str | None,
    repository: Repository,
    data: dict[str, Any],
    pull_request: Callable[[dict[str, Any]], PullRequest],
) -> WebhookEvent:
    """The event of any host: a push carries its ref and commits (the hosts name those keys alike), a pull or merge
    request what `pull_request` reads of the host's own shape."""
    if kind == "push":
        ref, before, after = _str(data.get("ref")), _str(data.get("before")), _str(data.get("after"))
        return WebhookEvent(host, kind, event, delivery, repository, ref=ref, before=before, after=after)
    if kind == "pull_request":
        return WebhookEvent(host, kind, event, delivery, repository, pull_request=pull_request(data))
    return WebhookEvent(host, kind, event, delivery, repository)


def _hub_event(host: HostName, kind: Kind, event: str, delivery: str | None, data: dict[str, Any]) -> WebhookEvent:
    repository = _hub_repository(data.get("repository"))
    return _event(host, kind, event, delivery, repository, data, _hub_pull_request)


_HUB_KINDS: dict[str, Kind] = {"push": "push", "pull_request": "pull_request", "ping": "ping"}


def parse_github(headers: Headers, body: bytes) -> WebhookEvent | None:
    event = _get(headers, "X-GitHub-Event")
    if event is None:
        return None
    delivery = _get(headers, "X-GitHub-Delivery")
    return _hub_event("github", _HUB_KINDS.get(event, "other"), event, delivery, _load(headers, body))


def parse_gitea(headers: Headers, body: bytes) -> WebhookEvent | None:
    event = _get(headers, "X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event")
    if event is None:
        return None
    delivery = _get(headers, "X-Gitea-Delivery", "X-Forgejo-Delivery", "X-Gogs-Delivery")
    return _hub_event("gitea", _HUB_KINDS.get(event, "other"), event, delivery, _load(headers, body))


def _gitlab_repository(data: dict[str, Any]) -> Repository:
    project, repo = _dict(data.get("project")), _dict(data.get("repository"))
    return Repository(
        full_name=_str(project.get("path_with_namespace")),
        html_url=_str(project.get("web_url")) or _str(repo.get("homepage")),
        clone_url=_str(project.get("git_http_url")) or _str(repo.get("git_http_url")),
        ssh_url=_str(project.get("git_ssh_url")) or _str(repo.get("git_ssh_url")),
        default_branch=_str(project.get("default_branch")),
    )


def _gitlab_merge_request(data: dict[str, Any]) -> PullRequest:
    attrs = _dict(data.get("object_attributes"))
    source = _dict(attrs.get("source"))
    return PullRequest(
        number=_int(attrs.get("iid")),
        action=_str(attrs.get("action")) or "",
        head_sha=_str(_dict(attrs.get("last_commit")).get("id")) or "",
        head_ref=_str(attrs.get("source_branch")) or "",
        base_ref=_str(attrs.get("target_branch")) or "",
        head_repo=_str(source.get("path_with_namespace")),
        head_clone_url=_str(source.get("git_http_url")),
    )


_GITLAB_KINDS: dict[str, Kind] = {"Push Hook": "push", "Tag Push Hook": "push", "Merge Request Hook": "pull_request"}


def parse_gitlab(headers: Headers, body: bytes) -> WebhookEvent | None:
    event = _get(headers, "X-Gitlab-Event")
    if event is None:
        return None
    # Idempotency-Key (17.4+) is documented as stable across retries; the event UUID is the older id
    delivery = _get(headers, "Idempotency-Key", "X-Gitlab-Event-UUID")
    data = _load(headers, body)
    kind = _GITLAB_KINDS.get(event, "other")
    repository = _gitlab_repository(data)
    return _event("gitlab", kind, event, delivery, repository, data, _gitlab_merge_request)


@dataclass(frozen=True)
class Host:
    name: HostName
    label: str
    event_header: str
    verify: Callable[[Headers, bytes, str | None], None]
    parse: Callable[[Headers, bytes], WebhookEvent | None]
    event_headers: tuple[str, ...] = ()

    def has_event(self, headers: Headers) -> bool:
        """Whether the request carries this host's event header (what `parse` needs to return an event)."""
        return _get(headers, *(self.event_headers or (self.event_header,))) is not None


GITHUB = Host("github", "GitHub", "X-GitHub-Event", verify_github, parse_github, ("X-GitHub-Event",))
GITEA = Host(
    "gitea", "Gitea", "X-Gitea-Event", verify_gitea, parse_gitea, ("X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event")
)
GITLAB = Host("gitlab", "GitLab", "X-Gitlab-Event", verify_gitlab, parse_gitlab, ("X-Gitlab-Event",))


def verify_any(host: Host, headers: Headers, body: bytes, secrets: Mapping[str, str]) -> dict[str, str | None]:
    """For each name, None when its secret signed the raw `body`, else why not; each distinct secret is checked
    once (constant time), and nothing is parsed."""
    by_secret: dict[str, str | None] = {}
    for secret in dict.fromkeys(secrets.values()):
        try:
            host.verify(headers, body, secret)
        except SignatureError as exc:
            by_secret[secret] = str(exc)
        else:
            by_secret[secret] = None
    return {name: by_secret[secret] for name, secret in secrets.items()}


HOSTS: dict[str, Host] = {h.name: h for h in (GITHUB, GITEA, GITLAB)}


# -- which sources an event concerns -------------------------------------------------------------------------------


def repo_key(url: str) -> str | None:
    """`host/owner/name`, lower-case, for comparing one repository's URLs across forms; None for a local path.

    https://github.com/Acme/Flows.git, http://github.com/acme/flows/, ssh://git@github.com:22/acme/flows.git,
    git@github.com:acme/flows.git and git://github.com/acme/flows all give `github.com/acme/flows`. Ports and
    credentials are dropped: the same repository is served over HTTPS and SSH on different ports.
    """
    url = url.strip()
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme == "file" or not parts.hostname:
            return None
        host, path = parts.hostname, parts.path
    elif ":" in url and "@" in url.split(":", 1)[0]:  # scp-like: git@host:owner/name.git
        userhost, path = url.split(":", 1)
        host = userhost.rpartition("@")[2]
    else:
        return None
    path = path.strip("/").removesuffix(".git").strip("/")
    if not host or not path:
        return None
    return f"{host}/{path}".lower()


def _event_keys(event: WebhookEvent) -> set[str]:
    return {k for k in (repo_key(u) for u in event.repository.urls) if k}


def _status_names_it(source: SourceConfig, event: WebhookEvent) -> bool:
    """A source read from a local mirror can still name its host repository in its `status` block."""
    status, full_name = source.status, event.repository.full_name
    if status is None or full_name is None or status.provider != event.host:
        return False
    return status.repository.strip("/").lower() == full_name.lower()


def source_matches(source: SourceConfig, event: WebhookEvent) -> bool:
    key = repo_key(source.repo)
    if key is not None and key in _event_keys(event):
        return True
    return _status_names_it(source, event)


def match_sources(settings: Settings, event: WebhookEvent) -> list[SourceConfig]:
    """The sources whose repository is the event's (by normalised URL, or by `status.repository`)."""
    return [s for s in settings.sources if source_matches(s, event)]


def tracked_branch(source: SourceConfig, event: WebhookEvent) -> str | None:
    """The branch a source follows; for a source without `branch`, the repository's default branch if known."""
    return source.branch or event.repository.default_branch
