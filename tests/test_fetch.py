"""fetch() against real repositories served on 127.0.0.1: local path, file://, smart HTTP and git://."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from dulwich.client import SSHGitClient
from dulwich.objects import Commit, Tag, Tree
from dulwich.repo import Repo
from gitservers import (
    GitRepo,
    closed_port_url,
    git,
    git_daemon,
    http_backend_app,
    http_git_server,
    serve_wsgi,
    silent_server,
)

from gitsync.config import SourceConfig
from gitsync.errors import FetchError
from gitsync.git import fetch as fetch_module
from gitsync.git import remote as remote_module
from gitsync.git.fetch import FetchResult, cache_path, fetch
from gitsync.git.trees import list_flow_files, open_repo, resolve
from gitsync.redact import redact, redact_url

TOKEN = "ghp_s3cretTokenValue42"
TOKEN_ENV = "GITSYNC_TEST_FETCH_TOKEN"
TRANSPORTS = ["local", "file", "http", "git"]

Url = Callable[[str], str]


def source(repo: str, branch: str | None = "main", **extra: Any) -> SourceConfig:
    return SourceConfig(name="flows", repo=repo, branch=branch, namespace_prefix="team", **extra)


@pytest.fixture
def srv(tmp_path: Path) -> Path:
    """The folder the servers export: bare repositories named `<name>.git`."""
    root = tmp_path / "srv"
    root.mkdir()
    return root


@pytest.fixture
def origin(tmp_path: Path, srv: Path) -> GitRepo:
    """A work-tree repository on `main` with one flow, published as `srv/flows.git`."""
    repo = GitRepo(tmp_path / "work")
    repo.commit({"flows/hello.yaml": "id: hello\nnamespace: team\n"}, "first")
    repo.publish(srv, "flows")
    return repo


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(params=TRANSPORTS)
def url(request: pytest.FixtureRequest, srv: Path) -> Iterator[Url]:
    """`url(name)`: how to reach `srv/<name>.git` over the parametrised transport."""
    kind = request.param
    with ExitStack() as stack:
        if kind == "local":
            yield lambda name: str(srv / f"{name}.git")
        elif kind == "file":
            yield lambda name: (srv / f"{name}.git").as_uri()
        elif kind == "http":
            base = stack.enter_context(http_git_server(srv))
            yield lambda name: f"{base}/{name}.git"
        else:
            base = stack.enter_context(git_daemon(srv))
            yield lambda name: f"{base}/{name}.git"


def publish(repo: GitRepo, srv: Path, files: dict[str, str | None]) -> str:
    sha = repo.commit(files)
    repo.publish(srv, "flows")
    return sha


def force_push_unrelated(repo: GitRepo, srv: Path) -> str:
    """Replace `main` with a one-commit history that shares nothing with the old one."""
    repo.checkout_orphan("rewrite")
    sha = repo.commit({"flows/other.yaml": "id: other\nnamespace: team\n"}, "rewritten")
    git("branch", "-f", "main", "rewrite", cwd=repo.path)
    git("checkout", "-q", "main", cwd=repo.path)
    git("branch", "-D", "rewrite", cwd=repo.path)
    repo.publish(srv, "flows")
    return sha


def assert_refs_complete(repo_path: Path) -> None:
    """Every ref of the cache points at a commit whose whole history and trees are stored (crash-safety)."""
    repo = Repo(str(repo_path))
    try:
        for name, sha in repo.get_refs().items():
            assert sha in repo.object_store, f"{name!r} points at missing {sha!r}"
            _assert_closure(repo, sha)
    finally:
        repo.close()


def _assert_closure(repo: Repo, start: bytes) -> None:
    todo, seen = [start], set()
    while todo:
        sha = todo.pop()
        if sha in seen:
            continue
        seen.add(sha)
        obj = repo.object_store[sha]  # KeyError here means a ref reaches a missing object
        if isinstance(obj, Commit):
            todo.extend([obj.tree, *obj.parents])
        elif isinstance(obj, Tree):
            todo.extend(entry.sha for entry in obj.iteritems() if entry.mode != 0o160000)
        elif isinstance(obj, Tag):
            todo.append(obj.object[1])


# --- the happy paths, on every transport ----------------------------------------------------------------------


def test_first_fetch_new_commit_and_nothing_new(origin: GitRepo, srv: Path, data_dir: Path, url: Url) -> None:
    first = fetch(source(url("flows")), data_dir)
    assert first == FetchResult(origin.head(), "main", data_dir / "repos" / "flows.git", None, False)
    assert first.changed
    repo = open_repo(str(first.repo_path))
    assert repo.bare
    assert resolve(repo, "HEAD").id.decode() == first.commit
    assert list(list_flow_files(repo, resolve(repo, first.commit).tree)) == ["flows/hello.yaml"]
    repo.close()

    second_sha = publish(origin, srv, {"flows/bye.yaml": "id: bye\nnamespace: team\n"})
    second = fetch(source(url("flows")), data_dir)
    assert (second.previous, second.commit, second.forced) == (first.commit, second_sha, False)

    third = fetch(source(url("flows")), data_dir)
    assert (third.previous, third.commit, third.forced, third.changed) == (second_sha, second_sha, False, False)
    assert third.revision == f"main@sha1:{second_sha}"
    assert_refs_complete(third.repo_path)


def test_force_push_to_unrelated_history(origin: GitRepo, srv: Path, data_dir: Path, url: Url) -> None:
    before = fetch(source(url("flows")), data_dir)
    rewritten = force_push_unrelated(origin, srv)

    after = fetch(source(url("flows")), data_dir)

    assert (after.previous, after.commit, after.forced) == (before.commit, rewritten, True)
    repo = open_repo(str(after.repo_path))
    assert list(list_flow_files(repo, resolve(repo, "HEAD").tree)) == ["flows/other.yaml"]
    repo.close()
    assert_refs_complete(after.repo_path)


def test_default_branch_is_the_remotes_head(
    tmp_path: Path, srv: Path, data_dir: Path, url: Url, caplog: pytest.LogCaptureFixture
) -> None:
    repo = GitRepo(tmp_path / "trunk-work", branch="trunk")
    repo.commit({"a.yaml": "id: a\nnamespace: team\n"})
    git("branch", "aaa-first-alphabetically", cwd=repo.path)
    repo.commit({"b.yaml": "id: b\nnamespace: team\n"})
    repo.publish(srv, "trunked")
    caplog.set_level(logging.INFO, logger="gitsync.fetch")

    result = fetch(source(url("trunked"), branch=None), data_dir)

    assert (result.branch, result.commit) == ("trunk", repo.head("trunk"))
    assert "default branch 'trunk'" in caplog.text


def test_only_the_configured_branch_is_fetched(origin: GitRepo, srv: Path, data_dir: Path) -> None:
    git("checkout", "-q", "-b", "dev", cwd=origin.path)
    dev = origin.commit({"flows/dev.yaml": "id: dev\nnamespace: team\n"})
    origin.publish(srv, "flows")
    with http_git_server(srv) as base:
        result = fetch(source(f"{base}/flows.git", branch="dev"), data_dir)
    repo = Repo(str(result.repo_path))
    assert (result.branch, result.commit) == ("dev", dev)
    assert set(repo.get_refs()) == {b"HEAD", b"refs/heads/dev"}
    assert repo.refs.read_ref(b"HEAD") == b"ref: refs/heads/dev"
    repo.close()


# --- failures: each names the remote, says what to do, and never leaks a credential ---------------------------


def test_unknown_branch_lists_the_remotes_branches(origin: GitRepo, srv: Path, data_dir: Path, url: Url) -> None:
    git("branch", "release", cwd=origin.path)
    origin.publish(srv, "flows")
    with pytest.raises(FetchError, match=r"branch 'prod' not found \(branches: main, release\)"):
        fetch(source(url("flows"), branch="prod"), data_dir)


@pytest.mark.parametrize("scheme", ["http", "git"])
def test_unreachable_remote_fails_fast(data_dir: Path, scheme: str) -> None:
    remote = closed_port_url(scheme)
    started = time.monotonic()
    with pytest.raises(FetchError, match="connection refused") as caught:
        fetch(source(remote), data_dir)
    assert time.monotonic() - started < 5
    assert str(caught.value).startswith(remote)


@pytest.mark.parametrize("scheme", ["http", "git"])
def test_a_silent_remote_times_out(data_dir: Path, scheme: str) -> None:
    with silent_server() as port:
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"timed out \(no answer within 0.5 s\)"):
            fetch(source(f"{scheme}://127.0.0.1:{port}/flows.git"), data_dir, timeout=0.5)
    assert time.monotonic() - started < 5


def test_right_token_is_sent_as_basic_auth(
    origin: GitRepo, srv: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    caplog.set_level(logging.DEBUG)
    with http_git_server(srv, token=TOKEN) as base:
        result = fetch(source(f"{base}/flows.git", token_env=TOKEN_ENV), data_dir)
    assert result.commit == origin.head()
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("token_env", "env_value", "expected"),
    [
        pytest.param(TOKEN_ENV, "wrong-" + TOKEN, f"the token in {TOKEN_ENV} was refused", id="wrong-token"),
        pytest.param(TOKEN_ENV, None, f"{TOKEN_ENV} \\(token_env\\) is not set or empty", id="env-var-unset"),
        pytest.param(None, None, "no token is configured: set the source's token_env", id="no-token-env"),
    ],
)
def test_refused_credentials_name_the_variable_never_the_value(
    origin: GitRepo,
    srv: Path,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    token_env: str | None,
    env_value: str | None,
    expected: str,
) -> None:
    if env_value is None:
        monkeypatch.delenv(TOKEN_ENV, raising=False)
    else:
        monkeypatch.setenv(TOKEN_ENV, env_value)
    caplog.set_level(logging.DEBUG)
    with http_git_server(srv, token=TOKEN) as base, pytest.raises(FetchError) as caught:
        fetch(source(f"{base}/flows.git", token_env=token_env), data_dir)
    message = str(caught.value)
    assert "authentication failed (HTTP 401)" in message
    assert re.search(expected, message), message
    for secret in (TOKEN, env_value or TOKEN):
        assert secret not in message
        assert secret not in caplog.text


def test_credentials_in_the_url_are_redacted(
    origin: GitRepo, srv: Path, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with http_git_server(srv, token=TOKEN) as base:
        host = base.removeprefix("http://")
        ok = fetch(source(f"http://oauth2:{TOKEN}@{host}/flows.git"), data_dir)
        with pytest.raises(FetchError) as caught:
            fetch(source(f"http://oauth2:{TOKEN}@{host}/missing.git"), data_dir)
    assert ok.commit == origin.head()
    assert str(caught.value) == f"http://***@{host}/missing.git: repository not found (HTTP 404): check the URL"
    assert TOKEN not in caplog.text


def test_repository_not_found(srv: Path, data_dir: Path) -> None:
    with http_git_server(srv) as base, pytest.raises(FetchError, match=r"repository not found \(HTTP 404\)"):
        fetch(source(f"{base}/missing.git"), data_dir)
    with git_daemon(srv) as base, pytest.raises(FetchError, match="repository not found"):
        fetch(source(f"{base}/missing.git"), data_dir)


def test_local_path_that_is_not_a_repository(tmp_path: Path, data_dir: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(FetchError, match=f"^{plain}: not a git repository$"):
        fetch(source(str(plain)), data_dir)
    with pytest.raises(FetchError, match="no such directory"):
        fetch(source(str(tmp_path / "absent")), data_dir)


def test_relative_local_path(origin: GitRepo, srv: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(srv)
    assert fetch(source("flows.git"), data_dir).commit == origin.head()


@pytest.mark.parametrize(
    ("location", "host", "port", "user", "path"),
    [
        ("git@example.com:acme/flows.git", "example.com", None, "git", "acme/flows.git"),
        ("ssh://deploy@example.com:2222/srv/flows.git", "example.com", 2222, "deploy", "/srv/flows.git"),
    ],
)
def test_ssh_addresses_use_the_ssh_vendor_in_batch_mode(
    location: str, host: str, port: int | None, user: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the wiring: no SSH server runs here. BatchMode stops a password prompt from hanging the daemon."""
    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -i /keys/deploy")
    remote = remote_module.open_remote(source(location), timeout=7)
    client = remote.client
    assert isinstance(client, SSHGitClient)
    assert (client.host, client.port, client.username, remote.path) == (host, port, user, path)
    assert client.ssh_command == "ssh -i /keys/deploy -o BatchMode=yes -o ConnectTimeout=7 -o ServerAliveInterval=7"


def test_unsupported_scheme(data_dir: Path) -> None:
    with pytest.raises(FetchError, match="unsupported URL scheme 'ftp'"):
        fetch(source("ftp://user:pw@example.com/x.git"), data_dir)


# --- crash safety ---------------------------------------------------------------------------------------------


def _truncating(app: Any) -> Any:
    """Middleware: the pack (the answer to a git-upload-pack POST) stops halfway, as if the connection died."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["REQUEST_METHOD"] != "POST":
            return app(environ, start_response)
        captured: dict[str, Any] = {}
        body = b"".join(app(environ, lambda status, headers: captured.update(status=status, headers=headers)))
        cut = body[: len(body) // 2]
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(cut)))])
        return [cut]

    return wrapped


def test_an_interrupted_fetch_leaves_the_ref_where_it_was(origin: GitRepo, srv: Path, data_dir: Path) -> None:
    with http_git_server(srv) as base:
        before = fetch(source(f"{base}/flows.git"), data_dir)
    new = publish(origin, srv, {"flows/big.yaml": "x: " + "abcdefghij" * 5000 + "\n"})

    with serve_wsgi(_truncating(http_backend_app(srv))) as base, pytest.raises(FetchError):
        fetch(source(f"{base}/flows.git"), data_dir)

    repo = Repo(str(cache_path(source(""), data_dir)))
    assert repo.refs[b"refs/heads/main"] == before.commit.encode()
    repo.close()
    assert_refs_complete(before.repo_path)
    with http_git_server(srv) as base:
        after = fetch(source(f"{base}/flows.git"), data_dir)
    assert (after.previous, after.commit) == (before.commit, new)


def test_fetch_without_haves_brings_a_self_contained_pack(origin: GitRepo, srv: Path, data_dir: Path) -> None:
    """The fallback used when a server refuses our "haves": the pack must stand on its own."""
    with http_git_server(srv) as base:
        first = fetch(source(f"{base}/flows.git"), data_dir)
        new = publish(origin, srv, {"flows/more.yaml": "id: more\nnamespace: team\n"})
        remote = remote_module.open_remote(source(f"{base}/flows.git"), timeout=5)
        repo = Repo(str(first.repo_path))
        fetch_module._fetch_without_haves(remote, repo, lambda refs, depth=None: [refs[b"refs/heads/main"]])
        assert new.encode() in repo.object_store
        _assert_closure(repo, new.encode())
        repo.close()


# --- redaction ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:secret@host/x.git", "https://***@host/x.git"),
        ("https://token@host:8443/x.git", "https://***@host:8443/x.git"),
        ("https://host/x.git?private_token=abc&ref=main", "https://host/x.git?private_token=***&ref=main"),
        ("https://host/x.git", "https://host/x.git"),
        ("git@github.com:acme/flows.git", "git@github.com:acme/flows.git"),
        ("/srv/git/flows.git", "/srv/git/flows.git"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_masks_urls_and_secret_values() -> None:
    text = "GET https://bot:abc123@host/x.git failed; server said: bad token abc123 (prefix abc)"
    assert (
        redact(text, ["abc123", None, ""])
        == "GET https://***@host/x.git failed; server said: bad token *** (prefix abc)"
    )


def test_a_second_process_waits_for_the_cache_instead_of_failing(tmp_path: Path) -> None:
    """Two processes fetching one cache at once (the daemon and a `gitsync sync`): both succeed, one after the other."""
    import subprocess
    import sys

    repo = GitRepo(tmp_path / "work")
    repo.commit({"flows/a.yaml": "id: a\n"})
    script = (
        "from pathlib import Path; from gitsync.config import SourceConfig; from gitsync.git.fetch import fetch;"
        f"r = fetch(SourceConfig(name='s', repo={str(repo.path)!r}, branch='main'), Path({str(tmp_path / 'data')!r}));"
        "print(r.commit)"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    assert set(outputs) == {repo.head()}
