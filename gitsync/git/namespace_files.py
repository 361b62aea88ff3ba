"""Namespace files read from the git cache at one commit: `runner.api.NamespaceFiles` for an execution.

A source keeps the files of namespace `company.team` in `<path>/_files/company.team/` (the folder is the source's
`namespace_files` setting). They are versioned with the flows: an execution reads the files of the commit of its
flow revision, so a replay of an old execution sees the files it saw. The control plane reads git here; tasks only
see the protocol.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dulwich.objects import Commit

from gitsync.git import trees
from runner.api import TaskFailed

_CACHED_COMMITS = 32


@dataclass(frozen=True)
class FilesPlace:
    """Where a source's namespace files live: its bare cache, and their folder in the repository."""

    repo_path: str
    folder: str
    """Repository path of the folder holding one sub-folder per namespace (`flows/_files`)."""


def namespace_folder(folder: str, namespace: str) -> str:
    """The repository folder of one namespace's files."""
    return trees.join(trees.normalise_folder(folder), namespace)


class CommitFiles:
    """The namespace files of one commit of one repository (the listing of each namespace read once)."""

    def __init__(self, place: FilesPlace, commit: str) -> None:
        self.place = place
        self.commit = commit
        self._listed: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def _listing(self, namespace: str) -> dict[str, str]:
        with self._lock:
            if namespace not in self._listed:
                repo = trees.open_repo(self.place.repo_path)
                try:
                    commit = repo[trees.object_id(self.commit)]
                    assert isinstance(commit, Commit)
                    folder = namespace_folder(self.place.folder, namespace)
                    tree = trees.folder_tree(repo, commit, folder)
                    self._listed[namespace] = trees.list_files(repo, tree, folder)
                finally:
                    repo.close()
            return self._listed[namespace]

    def paths(self, namespace: str) -> list[str]:
        return sorted(self._listing(namespace))

    def read(self, namespace: str, path: str) -> bytes:
        blob = self._listing(namespace).get(trees.normalise_folder(path))
        if blob is None:
            raise TaskFailed(
                f"namespace file {path!r} of namespace {namespace!r} does not exist ({self.describe(namespace)}); "
                "namespace files come from git: commit it there"
            )
        repo = trees.open_repo(self.place.repo_path)
        try:
            return trees.read_blob(repo, blob)
        finally:
            repo.close()

    def describe(self, namespace: str) -> str:
        return f"{namespace_folder(self.place.folder, namespace)}/ at commit {self.commit[:7]}"


class GitNamespaceFiles:
    """A commit -> its namespace files, over the sources' caches (the first cache that holds the commit)."""

    def __init__(self, places: Callable[[], Sequence[FilesPlace]]) -> None:
        self.places = places
        """Read again on each commit not seen yet (a source added since)."""
        self._cache: OrderedDict[str, CommitFiles] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, commit: str) -> CommitFiles | None:
        with self._lock:
            if commit in self._cache:
                self._cache.move_to_end(commit)
                return self._cache[commit]
        found = self._find(commit)
        if found is None:
            return None  # not fetched yet, perhaps: asked again next time
        with self._lock:
            self._cache[commit] = found
            while len(self._cache) > _CACHED_COMMITS:
                self._cache.popitem(last=False)
        return found

    def _find(self, commit: str) -> CommitFiles | None:
        for place in self.places():
            try:
                repo = trees.open_repo(place.repo_path)
            except trees.GitReadError:
                continue  # not fetched yet
            try:
                if trees.object_id(commit) in repo.object_store:
                    return CommitFiles(place, commit)
            finally:
                repo.close()
        return None
