"""Fetch one branch of a source into a bare cache with dulwich: no git binary, no work tree.

    result = fetch(source, data_dir)          # FetchResult(commit, branch, repo_path, previous, forced)
    repo = gitread.open_repo(str(result.repo_path))

The cache is `data_dir/repos/<source name>.git`. Each fetch asks the remote for its refs first (one round trip); when
the branch head is already cached nothing else is transferred, which keeps a 60 s poll cheap.

Transports and the translation of their errors are in `gitsync.git.remote`.

Crash safety: objects are written first (dulwich moves a complete pack and its index into place), then the branch
ref is moved with a compare-and-swap through a lock file and a rename. A crash at any point leaves the ref on a
commit whose objects are all present: the old one, or the new one.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from dulwich.client import (
    HTTPUnauthorized,
)
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.graph import can_fast_forward
from dulwich.object_store import ObjectStoreGraphWalker
from dulwich.objects import Commit
from dulwich.repo import Repo

from gitsync.config import SourceConfig
from gitsync.errors import FetchError
from gitsync.git.remote import Remote, network_cause, open_remote, translated_errors

if TYPE_CHECKING:  # dulwich >= 0.23 types refs and object ids as NewTypes over bytes; older ones have plain bytes
    from dulwich.client import DetermineWantsFunc, LsRemoteResult
    from dulwich.objects import ObjectID
    from dulwich.refs import Ref

log = logging.getLogger("gitsync.fetch")

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for a connection or for any single read from the remote."""

_HEADS = b"refs/heads/"
_HEAD = cast("Ref", b"HEAD")


@dataclass(frozen=True)
class FetchResult:
    """Where a source's branch stood after a fetch.

    `commit` is the full sha of the branch head, now in the bare cache at `repo_path`. `previous` is the cached head
    before this fetch (None on the first one). `forced` is True when `commit` does not descend from `previous`:
    the branch was force-pushed, and a sync must not assume the new commit contains the old one.
    """

    commit: str
    branch: str
    repo_path: Path
    previous: str | None
    forced: bool

    @property
    def changed(self) -> bool:
        return self.commit != self.previous

    @property
    def revision(self) -> str:
        """Flux's revision format, `main@sha1:<sha>`, for logs and the sync record."""
        return f"{self.branch}@sha1:{self.commit}"


def cache_path(source: SourceConfig, data_dir: Path) -> Path:
    return Path(data_dir) / "repos" / f"{source.name}.git"


def fetch(source: SourceConfig, data_dir: Path, timeout: float = DEFAULT_TIMEOUT) -> FetchResult:
    """Bring `source`'s branch (or the remote's default branch) into the bare cache under `data_dir`.

    Raises FetchError, with credentials redacted, when the remote cannot be read.
    """
    remote = open_remote(source, timeout)
    path = cache_path(source, data_dir)
    with _cache_lock(path), translated_errors(remote):
        repo = _open_cache(path)
        try:
            if remote.kind == "local" and _borrow_objects(repo, remote.path):
                repo.close()
                repo = _open_cache(path)  # re-read the alternates
            return _fetch_into(remote, repo, source.branch, path)
        finally:
            repo.close()


def fetch_ref(source: SourceConfig, data_dir: Path, ref: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Bring one ref of the remote (e.g. `refs/pull/12/head`) into the cache, kept under `refs/gitsync/…`.

    Used to plan a pull request's head: the commit is fetched and read, never applied. Returns its sha.
    """
    remote = open_remote(source, timeout)
    path = cache_path(source, data_dir)
    wanted = cast("Ref", ref.encode())
    with _cache_lock(path), translated_errors(remote):
        repo = _open_cache(path)
        try:
            if remote.kind == "local" and _borrow_objects(repo, remote.path):
                repo.close()
                repo = _open_cache(path)
            listing = _list_refs(remote, [wanted])
            head = listing.refs.get(wanted)
            if head is None:
                raise FetchError(f"{remote.display}: the remote has no ref {ref}")
            if head not in repo.object_store:
                head = _download(remote, repo, wanted, ref)
            repo.refs[cast("Ref", b"refs/gitsync/" + wanted.removeprefix(b"refs/"))] = head
            return head.decode()
        finally:
            repo.close()


# --- the steps ----------------------------------------------------------------------------------------------


def _fetch_into(remote: Remote, repo: Repo, wanted_branch: str | None, path: Path) -> FetchResult:
    listing = _list_refs(remote, [_HEAD, _HEADS])
    refs = {name: sha for name, sha in listing.refs.items() if sha is not None}
    branch = wanted_branch or _default_branch(remote, refs, listing.symrefs)
    ref = cast("Ref", _HEADS + branch.encode())
    if ref not in refs:
        raise FetchError(_unknown_branch(remote, branch, refs))
    previous = _cached_head(repo, ref)
    head = refs[ref]
    if head not in repo.object_store:
        head = _download(remote, repo, ref, branch)
    _move_ref(repo, ref, previous, head)
    result = FetchResult(
        commit=head.decode(),
        branch=branch,
        repo_path=path,
        previous=previous.decode() if previous else None,
        forced=_is_forced(repo, previous, head),
    )
    _log_result(remote, result)
    return result


def _list_refs(remote: Remote, prefixes: list[bytes]) -> LsRemoteResult:
    # Every client takes a str path (HTTP and local ones declare `str | bytes`); GitClient and the git:// and ssh
    # clients declare bytes but hand the path to `_connect`, which takes both.
    return remote.client.get_refs(remote.path, ref_prefix=prefixes)  # type: ignore[arg-type]


def _cached_head(repo: Repo, ref: Ref) -> ObjectID | None:
    try:
        return repo.refs[ref]
    except KeyError:
        return None


def _default_branch(remote: Remote, refs: Mapping[Ref, ObjectID], symrefs: Mapping[Ref, Ref]) -> str:
    """The branch the remote's HEAD points at (advertised as a symref by every git server since 1.8)."""
    target = symrefs.get(_HEAD)
    if target is None or not target.startswith(_HEADS):
        # An old server that does not advertise symrefs: a branch at HEAD's commit, main/master first.
        at_head = [name for name, sha in refs.items() if name.startswith(_HEADS) and sha == refs.get(_HEAD)]
        at_head.sort(key=lambda name: (name not in (b"refs/heads/main", b"refs/heads/master"), name))
        if not at_head:
            raise FetchError(f"{remote.display}: cannot tell the default branch (no HEAD); set the source's branch")
        target = at_head[0]
    branch = target[len(_HEADS) :].decode()
    _say_default_branch(remote.display, branch)
    return branch


_told_branches: set[tuple[str, str]] = set()
_told_lock = threading.Lock()


def _say_default_branch(display: str, branch: str) -> None:
    """Once per remote and branch in a process (a daemon fetches every poll); again if the default branch moves."""
    with _told_lock:
        first = (display, branch) not in _told_branches
        _told_branches.add((display, branch))
    level = logging.INFO if first else logging.DEBUG
    log.log(level, "%s: no branch configured; using the remote's default branch %r", display, branch)


def _unknown_branch(remote: Remote, branch: str, refs: Mapping[Ref, ObjectID]) -> str:
    names = sorted(name[len(_HEADS) :].decode() for name in refs if name.startswith(_HEADS))
    known = ", ".join(names) if names else "none: the repository is empty"
    return f"{remote.display}: branch {branch!r} not found (branches: {known})"


def _download(remote: Remote, repo: Repo, ref: Ref, branch: str) -> ObjectID:
    """Fetch the pack for the branch head; return the head as the remote reported it during this fetch.

    The cache's branch heads are sent as "haves". A remote that does not know them (the branch was force-pushed to
    an unrelated history) simply sends everything; should a server choke on them, the fetch is retried with none.
    """
    picked: dict[str, ObjectID] = {}

    def wants(refs: Mapping[Ref, ObjectID], depth: int | None = None) -> list[ObjectID]:
        sha = refs.get(ref)
        if sha is None:
            return []
        picked["head"] = sha
        return [] if sha in repo.object_store else [sha]

    try:
        remote.client.fetch(remote.path, repo, determine_wants=wants, ref_prefix=[ref])
    except (HangupException, HTTPUnauthorized, NotGitRepository):
        raise
    except GitProtocolError as exc:
        if network_cause(exc) is not None:
            raise
        log.warning("%s: fetch failed (%s); retrying without local history", remote.display, remote.clean(exc))
        _fetch_without_haves(remote, repo, wants)
    if "head" not in picked:
        raise FetchError(f"{remote.display}: branch {branch!r} disappeared during the fetch; try again")
    return picked["head"]


def _fetch_without_haves(remote: Remote, repo: Repo, wants: DetermineWantsFunc) -> None:
    """Fetch as a fresh clone would: tell the remote we have nothing, so the pack it sends is self-contained."""
    pack, commit, abort = repo.object_store.add_pack()
    try:
        remote.client.fetch_pack(remote.path, wants, ObjectStoreGraphWalker([], lambda _sha: []), pack.write)
    except BaseException:
        abort()
        raise
    commit()


def _move_ref(repo: Repo, ref: Ref, previous: ObjectID | None, head: ObjectID) -> None:
    """Point `ref` (and HEAD) at `head`, whose objects are already stored: compare-and-swap via lock file + rename."""
    if previous != head and not repo.refs.set_if_equals(ref, previous, head, message=b"gitsync: fetch"):
        raise FetchError(f"{repo.path}: {ref.decode()} changed during the fetch (another process?); try again")
    if repo.refs.read_ref(_HEAD) != b"ref: " + ref:
        repo.refs.set_symbolic_ref(_HEAD, ref)


def _is_forced(repo: Repo, previous: ObjectID | None, head: ObjectID) -> bool:
    if previous is None or previous == head:
        return False
    if previous not in repo.object_store or not isinstance(repo.object_store[previous], Commit):
        return True
    return not can_fast_forward(repo, previous, head)


def _log_result(remote: Remote, result: FetchResult) -> None:
    if not result.changed:
        log.info("%s: %s unchanged", remote.display, result.revision)
    elif result.forced:
        log.warning("%s: %s was force-pushed (was %s)", remote.display, result.revision, result.previous)
    else:
        log.info("%s: fetched %s (was %s)", remote.display, result.revision, result.previous or "not cached")


# --- the cache ----------------------------------------------------------------------------------------------

_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


@contextmanager
def _cache_lock(path: Path) -> Iterator[None]:
    """One fetch at a time per cache: a thread lock (a webhook and the poll timer may race) and an flock on
    `<cache>.lock` (a `gitsync sync` beside the daemon). The kernel drops the flock when its process dies, so any
    git lock file found inside the cache while holding it was left by a dead process, and is removed."""
    with _locks_guard:
        lock = _locks.setdefault(path.resolve(), threading.Lock())
    with lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.parent / f"{path.name}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                for stale in clear_stale_locks(path):
                    log.warning("removed %s, left by a fetch that was killed", stale)
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def clear_stale_locks(cache: Path) -> list[Path]:
    """Remove the git lock files of a cache (refs, HEAD, packed-refs, pack indexes); call only while no fetch runs.

    dulwich refuses every later write of a locked file (FileLocked), so a fetch killed mid-write would block the
    source for good. The cache's ref is still the old or the new commit, both whole.
    """
    if not cache.is_dir():
        return []
    candidates = [cache / "HEAD.lock", cache / "packed-refs.lock", *(cache / "refs").rglob("*.lock")]
    candidates += (cache / "objects" / "pack").glob("*.lock")
    removed = []
    for lock in candidates:
        if lock.is_file():
            lock.unlink(missing_ok=True)
            removed.append(lock)
    return removed


def _open_cache(path: Path) -> Repo:
    """Open the bare cache, creating it on first use (built aside and renamed in, so it is never half-made)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        Repo.init_bare(staging, mkdir=True).close()
        try:
            os.rename(staging, path)
        except OSError:  # another process created it first: use theirs
            _remove_tree(staging)
    try:
        return Repo(str(path))
    except NotGitRepository as exc:
        raise FetchError(f"cache {path} is not a git repository; delete it and gitsync will fetch again") from exc


def _borrow_objects(cache: Repo, local_repo: str) -> bool:
    """Let a cache of a LOCAL repository read that repository's objects in place (git's `alternates`).

    A fetch then only moves the cache's ref: nothing is copied and no tree is walked, so a one-file commit costs
    the same on a repository of any size. Returns True when the alternate was just added.
    """
    try:
        source = Repo(local_repo)
    except (NotGitRepository, OSError):
        return False  # the fetch reports it properly
    try:
        objects = os.path.abspath(source.object_store.path)
    finally:
        source.close()
    alternates = Path(cache.object_store.path) / "info" / "alternates"
    if alternates.exists() and objects in alternates.read_text().splitlines():
        return False
    cache.object_store.add_alternate_path(objects)
    return True


def _remove_tree(path: Path) -> None:
    for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        child.rmdir() if child.is_dir() else child.unlink()
    path.rmdir()
