"""Webhook signatures and payloads of GitHub, Gitea and GitLab, on the hosts' real payloads.

The payloads are read from ../shared/hosts/payloads beside the checkout (see its MANIFEST.tsv); they are not copied
into the repository. A test that needs them fails with a clear message when they are missing.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest
from shared import SHARED, require

from gitsync.config import Settings
from gitsync.hosts import webhooks
from gitsync.hosts.webhooks import (
    GITEA,
    GITHUB,
    GITLAB,
    ZERO_SHA,
    PayloadError,
    SignatureError,
    match_sources,
    parse_gitea,
    parse_github,
    parse_gitlab,
    repo_key,
    verify_gitea,
    verify_github,
    verify_gitlab,
)

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = SHARED / "hosts" / "payloads"
SECRET = "s3cret-for-tests"


def payload(name: str) -> bytes:
    """The bytes of a real payload, as the host would send them."""
    return require(PAYLOADS / name).read_bytes()


def hub_signature(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_headers(event: str, body: bytes, secret: str = SECRET, delivery: str = "gh-1") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": "sha256=" + hub_signature(body, secret),
    }


def gitea_headers(event: str, body: bytes, secret: str = SECRET, delivery: str = "gt-1") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Gitea-Event": event,
        "X-Gitea-Delivery": delivery,
        "X-Gitea-Signature": hub_signature(body, secret),
    }


def gitlab_headers(event: str, secret: str = SECRET, delivery: str = "gl-1") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Gitlab-Event": event,
        "Idempotency-Key": delivery,
        "X-Gitlab-Token": secret,
    }


# -- signatures -----------------------------------------------------------------------------------------------------


def test_github_published_test_vector() -> None:
    headers = {"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
    verify_github(headers, b"Hello, World!", "It's a Secret to Everybody")
    with pytest.raises(SignatureError, match="does not match"):
        verify_github(headers, b"Hello, World?", "It's a Secret to Everybody")


def test_signature_header_names_are_case_insensitive() -> None:
    body = b"{}"
    verify_github({"x-hub-signature-256": "sha256=" + hub_signature(body).upper()}, body, SECRET)
    verify_gitea({"x-gitea-signature": hub_signature(body)}, body, SECRET)
    verify_gitlab({"x-gitlab-token": SECRET}, body, SECRET)


def test_forgejo_signature_header_is_accepted() -> None:
    verify_gitea({"X-Forgejo-Signature": hub_signature(b"{}")}, b"{}", SECRET)


BAD_SIGNATURES = [
    pytest.param(verify_github, {}, "missing X-Hub-Signature-256", id="github-missing"),
    pytest.param(verify_github, {"X-Hub-Signature-256": "sha256="}, "sha256=<hex", id="github-empty-digest"),
    pytest.param(verify_github, {"X-Hub-Signature-256": "sha1=" + "0" * 40}, "sha256=<hex", id="github-sha1"),
    pytest.param(
        verify_github,
        {"X-Hub-Signature-256": "sha256=" + hub_signature(b"{}", "other")},
        "does not match",
        id="github-wrong",
    ),
    pytest.param(
        verify_github, {"X-Hub-Signature-256": "sha256=é" + "0" * 63}, "does not match", id="github-non-ascii"
    ),
    pytest.param(verify_gitea, {}, "missing X-Gitea-Signature", id="gitea-missing"),
    pytest.param(
        verify_gitea, {"X-Gitea-Signature": hub_signature(b"{}", "other")}, "does not match", id="gitea-wrong"
    ),
    pytest.param(
        verify_gitea, {"X-Gitea-Signature": "sha256=" + hub_signature(b"{}")}, "does not match", id="gitea-with-prefix"
    ),
    pytest.param(verify_gitlab, {}, "missing X-Gitlab-Token", id="gitlab-missing"),
    pytest.param(verify_gitlab, {"X-Gitlab-Token": "other"}, "does not match", id="gitlab-wrong"),
    pytest.param(verify_gitlab, {"X-Gitlab-Token": SECRET + "x"}, "does not match", id="gitlab-longer"),
]


@pytest.mark.parametrize(("verify", "headers", "message"), BAD_SIGNATURES)
def test_bad_signatures_are_refused(verify: Any, headers: dict[str, str], message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify(headers, b"{}", SECRET)


@pytest.mark.parametrize("verify", [verify_github, verify_gitea, verify_gitlab])
@pytest.mark.parametrize("secret", [None, ""])
def test_no_secret_means_refused_even_for_unsigned_deliveries(verify: Any, secret: str | None) -> None:
    empty_signatures = {"X-Hub-Signature-256": "sha256=", "X-Gitea-Signature": "", "X-Gitlab-Token": ""}
    with pytest.raises(SignatureError, match="no webhook secret is configured"):
        verify(empty_signatures, b"{}", secret)


def test_signature_errors_never_hold_the_secret_or_the_signature() -> None:
    given = hub_signature(b"{}", "other")
    for verify, headers in [
        (verify_github, {"X-Hub-Signature-256": "sha256=" + given}),
        (verify_gitea, {"X-Gitea-Signature": given}),
        (verify_gitlab, {"X-Gitlab-Token": "other-token"}),
    ]:
        with pytest.raises(SignatureError) as info:
            verify(headers, b"{}", SECRET)
        text = str(info.value)
        assert SECRET not in text and given not in text and "other-token" not in text
        assert hub_signature(b"{}") not in text


@pytest.mark.parametrize(
    ("verify", "headers"),
    [
        (verify_github, {"X-Hub-Signature-256": "sha256=" + hub_signature(b"{}")}),
        (verify_gitea, {"X-Gitea-Signature": hub_signature(b"{}")}),
        (verify_gitlab, {"X-Gitlab-Token": SECRET}),
    ],
    ids=["github", "gitea", "gitlab"],
)
def test_secrets_are_compared_in_constant_time(verify: Any, headers: dict[str, str], monkeypatch: Any) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(webhooks.hmac, "compare_digest", spy)
    verify(headers, b"{}", SECRET)
    assert len(calls) == 1


# -- payloads -------------------------------------------------------------------------------------------------------

HELLO = "Codertocat/Hello-World"
PR_HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
GITLAB_HEAD = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"

# (file, host event header, expected kind, expected repository full name, expected fields)
CASES = [
    ("github/push.payload.json", "push", "push", HELLO, {"ref": "refs/tags/simple-tag", "after": ZERO_SHA}),
    ("github/push.1.payload.json", "push", "push", HELLO, {"ref": "refs/tags/simple-tag", "branch": None}),
    ("github/push.with-organization.payload.json", "push", "push", HELLO, {"ref": "refs/tags/simple-tag"}),
    (
        "github/push.with-new-branch.payload.json",
        "push",
        "push",
        HELLO,
        {"branch": "master", "before": ZERO_SHA, "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246"},
    ),
    (
        "github/push.branch-with-commits.go-playground.json",
        "push",
        "push",
        "binkkatal/sample_app",
        {"ref": "refs/heads/master", "after": "fd489864e7642b48eaad6e3f155c10e46810ec72"},
    ),
    ("github/pull_request.opened.payload.json", "pull_request", "pull_request", HELLO, {"action": "opened"}),
    ("github/pull_request.synchronize.payload.json", "pull_request", "pull_request", HELLO, {"action": "synchronize"}),
    ("github/pull_request.closed.payload.json", "pull_request", "pull_request", HELLO, {"action": "closed"}),
    ("github/pull_request.reopened.payload.json", "pull_request", "pull_request", HELLO, {"action": "reopened"}),
    ("github/ping.payload.json", "ping", "ping", "Octocoders/Hello-World", {}),
    ("github/status.payload.json", "status", "other", HELLO, {}),
    ("github/check_suite.requested.payload.json", "check_suite", "other", HELLO, {}),
    ("github/check_run.created.payload.json", "check_run", "other", HELLO, {}),
    ("github/create.payload.json", "create", "other", HELLO, {}),
    ("github/delete.payload.json", "delete", "other", HELLO, {}),
    (
        "gitea/push-event.json",
        "push",
        "push",
        "example/example",
        {"branch": "master", "after": "67b56589a45103f891bdee7c0546e5d40bc02001"},
    ),
    (
        "gitea/pull-request-event.json",
        "pull_request",
        "pull_request",
        "example/example",
        {
            "number": 2,
            "action": "opened",
            "head_sha": "48e773f892a831faa47c0a160d1b7f0cd369ae2a",
            "head_ref": "master",
            "base_ref": "master",
            "head_repo": "example2/example",
        },
    ),
    ("gitea/create-event.json", "create", "other", "example/example", {}),
    ("gitea/delete-event.json", "delete", "other", "example/example", {}),
    ("gitlab/push.go-gitlab.json", "Push Hook", "push", "mike/diaspora", {"branch": "master", "after": GITLAB_HEAD}),
    ("gitlab/push-event.go-playground.json", "Push Hook", "push", "mike/diaspora", {"branch": "master"}),
    ("gitlab/tag_push.go-gitlab.json", "Tag Push Hook", "push", "jsmith/example", {"ref": "refs/tags/v1.0.0"}),
    ("gitlab/tag-event.go-playground.json", "Tag Push Hook", "push", "jsmith/example", {"branch": None}),
    (
        "gitlab/merge_request.go-gitlab.json",
        "Merge Request Hook",
        "pull_request",
        "gitlabhq/gitlab-test",
        {"number": 1, "action": "open", "head_sha": GITLAB_HEAD, "head_ref": "ms-viewport", "base_ref": "master"},
    ),
    (
        "gitlab/merge-request-event.go-playground.json",
        "Merge Request Hook",
        "pull_request",
        "gitlabhq/gitlab-test",
        {"number": 1, "head_repo": "awesome_space/awesome_project"},
    ),
    ("gitlab/pipeline.go-gitlab.json", "Pipeline Hook", "other", "gitlab-org/gitlab-test", {}),
]

PARSERS = {"github": (parse_github, github_headers), "gitea": (parse_gitea, gitea_headers)}


def parse_file(name: str, event_name: str) -> webhooks.WebhookEvent:
    body = payload(name)
    host = name.split("/")[0]
    if host == "gitlab":
        event = parse_gitlab(gitlab_headers(event_name), body)
    else:
        parse, headers = PARSERS[host]
        event = parse(headers(event_name, body), body)
    assert event is not None
    return event


@pytest.mark.parametrize(("name", "event_name", "kind", "full_name", "fields"), CASES, ids=[c[0] for c in CASES])
def test_every_real_payload_parses(name: str, event_name: str, kind: str, full_name: str, fields: dict) -> None:
    event = parse_file(name, event_name)
    assert (event.host, event.kind, event.event) == (name.split("/")[0], kind, event_name)
    assert event.repository.full_name == full_name
    assert event.repository.urls, "a repository with no URL cannot be matched to a source"
    assert event.delivery in ("gh-1", "gt-1", "gl-1")
    if kind == "pull_request":
        assert event.pull_request is not None and event.ref is None
        assert event.pull_request.head_sha and event.pull_request.head_ref and event.pull_request.base_ref
    else:
        assert event.pull_request is None
    for key, expected in fields.items():
        holder = event.pull_request if hasattr(event.pull_request, key) else event
        assert getattr(holder, key) == expected, key


def test_github_pull_request_fields() -> None:
    pr = parse_file("github/pull_request.synchronize.payload.json", "pull_request").pull_request
    assert pr == webhooks.PullRequest(
        number=2,
        action="synchronize",
        head_sha=PR_HEAD,
        head_ref="changes",
        base_ref="master",
        head_repo=HELLO,
        head_clone_url="https://github.com/Codertocat/Hello-World.git",
    )


def test_repository_urls_as_the_payload_gives_them() -> None:
    github = parse_file("github/push.with-new-branch.payload.json", "push").repository
    assert github.urls == (
        "https://github.com/Codertocat/Hello-World",
        "https://github.com/Codertocat/Hello-World.git",
        "git@github.com:Codertocat/Hello-World.git",
    )
    assert github.default_branch == "master"
    gitlab = parse_file("gitlab/push.go-gitlab.json", "Push Hook").repository
    assert gitlab.urls == (
        "http://example.com/mike/diaspora",
        "http://example.com/mike/diaspora.git",
        "git@example.com:mike/diaspora.git",
    )
    assert gitlab.default_branch == "master"


def test_delivery_ids_per_host() -> None:
    body = payload("gitlab/push.go-gitlab.json")
    uuid_only = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "uuid-1"}
    assert parse_gitlab(uuid_only, body).delivery == "uuid-1"  # type: ignore[union-attr]
    both = {**uuid_only, "Idempotency-Key": "key-1"}
    assert parse_gitlab(both, body).delivery == "key-1"  # type: ignore[union-attr]
    assert parse_gitlab({"X-Gitlab-Event": "Push Hook"}, body).delivery is None  # type: ignore[union-attr]
    forgejo = {"X-Forgejo-Event": "push", "X-Forgejo-Delivery": "fj-1"}
    event = parse_gitea(forgejo, payload("gitea/push-event.json"))
    assert event is not None and event.delivery == "fj-1" and event.kind == "push"


def test_github_form_encoded_delivery() -> None:
    from urllib.parse import urlencode

    body = urlencode({"payload": payload("github/push.with-new-branch.payload.json").decode()}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-GitHub-Event": "push"}
    event = parse_github(headers, body)
    assert event is not None and event.branch == "master"


def test_no_event_header_is_not_a_delivery_of_that_host() -> None:
    body = payload("gitea/push-event.json")
    assert parse_github({}, body) is None
    assert parse_gitea({"X-GitHub-Event": "push"}, body) is None
    assert parse_gitlab({"X-Gitea-Event": "push"}, body) is None


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b"\xff\xfe"], ids=["empty", "text", "list", "binary"])
@pytest.mark.parametrize("host", [GITHUB, GITEA, GITLAB], ids=lambda h: h.name)
def test_bad_bodies_are_payload_errors(host: webhooks.Host, body: bytes) -> None:
    with pytest.raises(PayloadError):
        host.parse({host.event_header: "push"}, body)


def test_odd_field_types_do_not_crash() -> None:
    body = b'{"ref": 5, "after": null, "repository": "x", "pull_request": [], "number": true}'
    event = parse_github({"X-GitHub-Event": "push"}, body)
    assert event is not None and event.ref is None and event.repository.urls == ()
    pr_event = parse_github({"X-GitHub-Event": "pull_request"}, body)
    assert pr_event is not None and pr_event.pull_request is not None and pr_event.pull_request.number == 0


# -- matching events to sources -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://github.com/Acme/Flows.git", "github.com/acme/flows"),
        ("http://github.com/acme/flows/", "github.com/acme/flows"),
        ("https://user:tok@github.com/acme/flows", "github.com/acme/flows"),
        ("ssh://git@github.com:22/acme/flows.git", "github.com/acme/flows"),
        ("git@github.com:acme/flows.git", "github.com/acme/flows"),
        ("git://github.com/acme/flows", "github.com/acme/flows"),
        ("https://gitlab.example.com/group/sub/proj.git", "gitlab.example.com/group/sub/proj"),
        ("http://localhost:3000/example/example", "localhost/example/example"),
        ("/srv/git/flows", None),
        ("file:///srv/git/flows.git", None),
        ("flows", None),
        ("https://github.com/", None),
    ],
)
def test_repo_key(url: str, key: str | None) -> None:
    assert repo_key(url) == key


def settings_for(*sources: dict[str, Any]) -> Settings:
    return Settings.model_validate({"sources": list(sources)})


def test_match_sources_by_any_url_form() -> None:
    event = parse_file("github/push.with-new-branch.payload.json", "push")
    settings = settings_for(
        {"name": "https", "repo": "https://github.com/codertocat/hello-world", "namespace_prefix": "a"},
        {"name": "ssh", "repo": "git@github.com:Codertocat/Hello-World.git", "namespace_prefix": "b"},
        {"name": "other", "repo": "https://github.com/Codertocat/Other.git", "namespace_prefix": "c"},
        {"name": "otherhost", "repo": "https://gitlab.com/Codertocat/Hello-World.git", "namespace_prefix": "d"},
        {"name": "local", "repo": "/srv/Codertocat/Hello-World", "namespace_prefix": "e"},
    )
    assert [s.name for s in match_sources(settings, event)] == ["https", "ssh"]


def test_a_local_mirror_matches_through_its_status_repository() -> None:
    event = parse_file("gitea/push-event.json", "push")
    status = {"provider": "gitea", "repository": "example/example"}
    settings = settings_for(
        {"name": "mirror", "repo": "/srv/mirror", "namespace_prefix": "a", "status": status},
        {"name": "wrong-host", "repo": "/srv/m2", "namespace_prefix": "b", "status": {**status, "provider": "github"}},
    )
    assert [s.name for s in match_sources(settings, event)] == ["mirror"]
