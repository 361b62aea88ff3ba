"""The base and head of a review, with the history its plan reads: from the CI's clone, or fetched with dulwich.

CI clones are shallow (GitHub's checkout takes one commit, GitLab's twenty or fifty), so the base commit, the
history revert detection walks (`compute.HISTORY_COMMITS` commits of base's first parents) or the commit base and
head share may be missing. Then the base branch and the pull request's head ref are fetched, with their history,
into a bare cache under the data folder (`gitsync.git.fetch`, as the daemon fetches a pull request), and the plan
reads that. When nothing can be fetched, a clone that holds both commits is planned as it is and the plan says what
it could not compute (`compute._shallow_notes`); one that lacks a commit cannot be planned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dulwich.objects import Commit
from dulwich.repo import Repo

from gitsync.config import SourceConfig
from gitsync.errors import FetchError
from gitsync.git import trees as gitread
from gitsync.git.fetch import fetch, fetch_ref
from gitsync.git.trees import GitReadError
from gitsync.redact import redact_url
from gitsync.review.ci import Target
from gitsync.sync.compute import HISTORY_COMMITS
from gitsync.sync.pull_requests import head_ref


@dataclass(frozen=True)
class Commits:
    """Where to plan from: a repository holding both commits, their full shas, and what was done to get them."""

    repo_path: str
    base: str
    head: str
    fetched: str | None = None
    """What the clone lacked and what was fetched for it, for the log (None: the clone had everything)."""
    notes: tuple[str, ...] = ()
    """What could not be fetched, for the plan's notes."""


@dataclass(frozen=True)
class _Look:
    """What the local clone holds of a review: each commit's sha (None: not there), and what it lacks in words."""

    base: str | None
    head: str | None
    lacking: list[str]


def gather(target: Target, repo_dir: str, data_dir: Path) -> Commits:
    """The commits to plan; raises FetchError (a commit is missing and cannot be fetched) or GitReadError."""
    try:
        local: Repo | None = gitread.open_repo(repo_dir)
    except GitReadError:
        local = None
    if local is None:
        look = _Look(None, None, [f"there is no clone here ({repo_dir} is not a git repository)"])
        origin = None
    else:
        try:
            look = _look(local, target)
            origin = _origin(local)
        finally:
            local.close()
        if not look.lacking and look.base is not None and look.head is not None:
            return Commits(repo_dir, look.base, look.head)
    lacking = "the clone lacks " + " and ".join(look.lacking) if local is not None else look.lacking[0]
    remote = target.remote or origin
    try:
        if remote is None:
            raise FetchError("no remote to fetch from (the CI names none and the clone has no `origin`); give --remote")
        return _fetch(target, remote, data_dir, look, lacking)
    except FetchError as exc:
        if look.base is not None and look.head is not None:  # only history is missing: plan, saying what it lacks
            return Commits(repo_dir, look.base, look.head, notes=(f"{lacking}, and fetching it failed: {exc}",))
        raise FetchError(f"cannot plan: {lacking}, and fetching it failed: {exc}") from None


def _look(repo: Repo, target: Target) -> _Look:
    head = _sha(repo, target.head)
    base = _sha(repo, target.base) if target.base else _branch_tip(repo, target.base_branch)
    lacking = []
    if head is None:
        lacking.append(f"the pull request's head {_short(target.head)}")
    if base is None and target.base:
        lacking.append(f"the base commit {_short(target.base)}")
    elif base is None:
        lacking.append(f"the base branch {target.base_branch}" if target.base_branch else "a base to plan against")
    if base is not None and head is not None and gitread.is_shallow(repo):
        base_commit = gitread.resolve(repo, base)
        held = _held_history(repo, base_commit)
        if held is not None:
            lacking.append(f"all but {held} commit(s) of the base's history (a shallow clone)")
        if not gitread.share_history(repo, base_commit, gitread.resolve(repo, head)):
            lacking.append("the commit base and head share")
    return _Look(base, head, lacking)


def _sha(repo: Repo, rev: str) -> str | None:
    try:
        return gitread.resolve(repo, rev).id.decode()
    except (GitReadError, KeyError):
        return None


def _branch_tip(repo: Repo, branch: str | None) -> str | None:
    """The base branch's tip as the clone has it: its remote-tracking branch, else a local branch."""
    if not branch:
        return None
    return _sha(repo, f"refs/remotes/origin/{branch}") or _sha(repo, f"refs/heads/{branch}")


def _held_history(repo: Repo, base: Commit) -> int | None:
    """How many commits of base's first-parent history a shallow clone holds, when fewer than revert detection
    reads (None: enough)."""
    walked, last = 0, base
    for commit, _ in gitread.path_history(repo, base, [], max_commits=HISTORY_COMMITS):
        walked, last = walked + 1, commit
    return walked if walked < HISTORY_COMMITS and gitread.history_cut_at(repo, last) else None


def _origin(repo: Repo) -> str | None:
    try:
        url = repo.get_config().get((b"remote", b"origin"), b"url")
    except KeyError:
        return None
    return url.decode("utf-8", "replace") if url else None


def _fetch(target: Target, remote: str, data_dir: Path, look: _Look, lacking: str) -> Commits:
    source = SourceConfig(name=target.source, repo=remote, branch=target.base_branch, token_env=target.token_env)
    ref = head_ref(target.host, target.number)
    base_tip = fetch(source, data_dir)
    head_tip = fetch_ref(source, data_dir, ref)
    cache = gitread.open_repo(str(base_tip.repo_path))
    notes: list[str] = []
    try:
        wanted_head = look.head or (target.head if target.head != "HEAD" else head_tip)
        head = _sha(cache, wanted_head)
        if head is None:
            raise FetchError(
                f"the pull request's head {_short(wanted_head)} is not in {ref} of {redact_url(remote)} "
                "(pushed again since this run started? the next run plans the new head)"
            )
        wanted_base = look.base or target.base
        base = _sha(cache, wanted_base) if wanted_base else base_tip.commit
        if base is None:
            notes.append(
                f"the base {_short(target.base or '')} is not on {base_tip.branch} of the remote any more: planned "
                f"against its tip {_short(base_tip.commit)}"
            )
            base = base_tip.commit
    finally:
        cache.close()
    fetched = f"{lacking}: fetched {base_tip.branch} and {ref} from {redact_url(remote)}"
    return Commits(str(base_tip.repo_path), base, head, fetched=fetched, notes=tuple(notes))


def _short(rev: str) -> str:
    return rev[:7] if len(rev) == 40 and all(c in "0123456789abcdef" for c in rev) else rev
