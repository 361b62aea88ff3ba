"""Build git repositories of generated flows quickly with dulwich (one commit of N files, then small changes)."""

from __future__ import annotations

import time
from pathlib import Path

from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo
from flowgen import flow_text

AUTHOR = b"Bench <bench@example.com>"


def _tree(repo: Repo, files: dict[str, bytes]) -> bytes:
    """Write nested trees for {path: content}; returns the root tree id."""
    children: dict[str, dict[str, bytes]] = {}
    tree = Tree()
    for path, content in files.items():
        head, _, rest = path.partition("/")
        if rest:
            children.setdefault(head, {})[rest] = content
        else:
            blob = Blob.from_string(content)
            repo.object_store.add_object(blob)
            tree.add(head.encode(), 0o100644, blob.id)
    for name, sub in children.items():
        tree.add(name.encode(), 0o040000, _tree(repo, sub))
    repo.object_store.add_object(tree)
    return tree.id


def commit_files(repo: Repo, files: dict[str, bytes], message: str, parent: bytes | None = None) -> bytes:
    commit = Commit()
    commit.tree = _tree(repo, files)
    commit.parents = [parent] if parent else []
    commit.author = commit.committer = AUTHOR
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.encoding = b"UTF-8"
    commit.message = message.encode()
    repo.object_store.add_object(commit)
    repo.refs[b"refs/heads/main"] = commit.id
    return commit.id


def flow_repo(root: Path, count: int, folder: str = "flows") -> tuple[Repo, dict[str, bytes], bytes]:
    """A repository whose first commit holds `count` flows under `folder`; returns (repo, files, commit)."""
    repo = Repo.init(str(root), mkdir=True)
    repo.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")
    files = {f"{folder}/team{n % 20}/flow_{n:05d}.yaml": flow_text(n).encode() for n in range(count)}
    return repo, files, commit_files(repo, files, f"{count} flows")
