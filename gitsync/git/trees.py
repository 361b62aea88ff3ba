"""Read-only access to a local git repository with dulwich (no git binary): revisions, flow files, tree diffs.

Everything works on object ids, so the cost of a diff is the size of the change: dulwich's tree walk skips
sub-trees whose ids are equal, and a blob is only read when the caller asks for it.
Paths are repository-relative, with '/' separators, as text.

A git tree may name a file with bytes that are not UTF-8, or be malformed (a NUL inside a name ends the name
early and leaves the rest unparseable). A flow file so named, or a malformed tree on the way to the flows,
raises `BadPathError` naming the path with its bad bytes escaped (`flows/bad\\xff.yaml`); a sync records
it as an invalid commit instead of crashing.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from dulwich.errors import NotGitRepository, ObjectFormatException
from dulwich.graph import find_merge_base
from dulwich.object_store import tree_lookup_path
from dulwich.objects import Blob, Commit, Tree, parse_tree
from dulwich.objectspec import AmbiguousShortId, parse_commit
from dulwich.repo import Repo

from gitsync.errors import GitSyncError
from gitsync.flows.loader import FLOW_SUFFIXES

if TYPE_CHECKING:  # a NewType over bytes in dulwich >= 0.23, plain bytes before
    from dulwich.objects import ObjectID

_SHA_BYTES = 20  # SHA-1 repositories (what every host serves today)
_FILE_MODES = (0o100644, 0o100755)  # regular files; symlinks (0o120000) and submodules are not flows


class GitReadError(GitSyncError):
    """The repository or a revision cannot be read; the message says which and why."""


class BadPathError(GitReadError):
    """A flow file's name is not UTF-8, or a tree is malformed: `paths` are the escaped paths, for the report."""

    def __init__(self, paths: list[str], message: str) -> None:
        super().__init__(message)
        self.paths = paths


def escaped(path: bytes | str) -> str:
    """A path as printable text: bytes that are not UTF-8, and control characters, as backslash escapes."""
    raw = path.encode("utf-8", "surrogateescape") if isinstance(path, str) else path
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _check_name(path: str) -> None:
    """Refuse a flow path that is not valid UTF-8 (it was decoded with surrogateescape)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        shown = escaped(path)
        raise BadPathError([shown], f"{shown}: the file name is not valid UTF-8; rename the file") from None


def _bad_tree(where: str, tree_id: bytes, raw: bytes | None) -> BadPathError:
    """The error for a tree that cannot be parsed: the folder, and the first name that does not parse."""
    suspect = _suspect_name(raw) if raw is not None else None
    folder = where or "(repository root)"
    place = f"{where}/{escaped(suspect)}" if suspect is not None and where else escaped(suspect or b"") or folder
    return BadPathError(
        [place],
        f"{place}: the git tree of {folder} ({tree_id.decode(errors='replace')[:12]}) cannot be read: a file name "
        "in it holds a NUL byte, or the tree is corrupt; rename or remove the file",
    )


def _suspect_name(raw: bytes) -> bytes | None:
    """The entry name at which a raw tree stops parsing, with what follows its NUL shown (`nul\\x00x.yaml`)."""
    pos = 0
    previous: tuple[int, int] | None = None
    while pos < len(raw):
        space = raw.find(b" ", pos)
        nul = raw.find(b"\0", space + 1) if space > 0 else -1
        if space <= pos or nul < 0 or not raw[pos:space].isdigit() or nul + 1 + _SHA_BYTES > len(raw):
            break
        previous = (space + 1, nul)
        pos = nul + 1 + _SHA_BYTES
    else:
        return None
    if previous is None:
        return raw[pos : raw.find(b"\0", pos) if raw.find(b"\0", pos) > 0 else len(raw)][:200]
    start, nul = previous  # this entry's name held a NUL: its rest was read as the sha
    end = raw.find(b"\0", nul + 1)
    return raw[start : end if end > 0 else nul + 1][:200]


@dataclass(frozen=True)
class FileChange:
    """One flow file that differs between two trees; `old_*` is None for an add, `new_*` for a delete."""

    old_path: str | None
    old_blob: str | None
    new_path: str | None
    new_blob: str | None


def object_id(sha: str) -> ObjectID:
    """The hex sha of a commit, tree or blob (as the state database and FetchResult keep it) as dulwich's id."""
    return cast("ObjectID", sha.encode())


def open_repo(path: str) -> Repo:
    try:
        return Repo(path)
    except NotGitRepository:
        raise GitReadError(f"{path}: not a git repository") from None
    except OSError as exc:
        raise GitReadError(f"{path}: cannot open repository: {exc.strerror or exc}") from None


def resolve(repo: Repo, rev: str) -> Commit:
    """A commit from a full or short sha, a branch, a tag, HEAD, and `~N` / `^N` suffixes (`main~2`, `abc123^`)."""
    match = _SUFFIXES.match(rev)
    name, suffixes = (match.group(1), match.group(2)) if match and match.group(1) else (rev, "")
    commit = _lookup(repo, name, rev)
    for op, count in re.findall(r"([~^])(\d*)", suffixes):
        commit = _ancestor(repo, commit, op, int(count) if count else 1, rev)
    return commit


_SUFFIXES = re.compile(r"^(.*?)((?:[~^]\d*)+)$")


def _lookup(repo: Repo, name: str, rev: str) -> Commit:
    try:
        return parse_commit(repo, name)
    except AmbiguousShortId:
        raise GitReadError(f"revision {rev!r} is ambiguous (give more characters of the sha)") from None
    except (KeyError, ValueError):
        raise GitReadError(f"unknown revision {rev!r} (not a commit, branch or tag in {_repo_path(repo)})") from None


def _ancestor(repo: Repo, commit: Commit, op: str, count: int, rev: str) -> Commit:
    """`~N`: the Nth first-parent ancestor; `^N`: the Nth parent (`^0` is the commit itself)."""
    steps = [0] * count if op == "~" else ([count - 1] if count else [])
    for index in steps:
        if index >= len(commit.parents):
            raise GitReadError(f"revision {rev!r} does not exist (the history is shorter)")
        parent = repo.object_store[commit.parents[index]]
        if not isinstance(parent, Commit):
            raise GitReadError(f"revision {rev!r} does not name a commit")
        commit = parent
    return commit


def _repo_path(repo: Repo) -> str:
    return str(repo.path)


def folder_tree(repo: Repo, commit: Commit, folder: str) -> ObjectID | None:
    """The id of `folder`'s tree in `commit`, or None if the folder does not exist there."""
    folder = normalise_folder(folder)
    if not folder:
        return commit.tree
    try:
        mode, sha = tree_lookup_path(repo.object_store.__getitem__, commit.tree, folder.encode())
    except (KeyError, NotADirectoryError):
        return None
    return sha if mode == 0o040000 else None


def normalise_folder(folder: str | None) -> str:
    """'./flows/' -> 'flows'; '' and '.' -> '' (the repository root)."""
    parts = [p for p in (folder or "").replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


def join(folder: str, path: bytes | str) -> str:
    name = path.decode("utf-8", "surrogateescape") if isinstance(path, bytes) else path
    return f"{folder}/{name}" if folder else name


def is_flow_path(path: str) -> bool:
    """Flow files end in .yaml/.yml and live outside hidden folders (as `iter_flow_files` on disk)."""
    parts = path.split("/")
    return path.endswith(FLOW_SUFFIXES) and not any(p.startswith(".") for p in parts[:-1])


def list_flow_files(repo: Repo, tree_id: ObjectID | None, folder: str = "", skip: str | None = None) -> dict[str, str]:
    """Every flow file under a tree: repository path -> blob id (hex); none below the folder `skip` (the
    namespace files)."""
    out: dict[str, str] = {}
    if tree_id is None:
        return out
    stack: list[tuple[str, ObjectID]] = [(normalise_folder(folder), tree_id)]
    while stack:
        prefix, sha = stack.pop()
        for name, mode, entry_sha in _tree_entries(repo, sha, prefix):
            path = join(prefix, name)
            if mode == 0o040000:
                if not name.startswith(b".") and path != skip:
                    stack.append((path, entry_sha))
            elif mode in _FILE_MODES and path.endswith(FLOW_SUFFIXES):
                _check_name(path)
                out[path] = entry_sha.decode()
    return out


def list_files(repo: Repo, tree_id: ObjectID | None, folder: str = "") -> dict[str, str]:
    """Every regular file under a tree (namespace files: any name), path relative to the tree -> blob id (hex).
    Names that are not UTF-8 raise `BadPathError`."""
    out: dict[str, str] = {}
    if tree_id is None:
        return out
    stack: list[tuple[str, ObjectID]] = [("", tree_id)]
    while stack:
        prefix, sha = stack.pop()
        for name, mode, entry_sha in _tree_entries(repo, sha, join(normalise_folder(folder), prefix)):
            path = join(prefix, name)
            if mode == 0o040000:
                stack.append((path, entry_sha))
            elif mode in _FILE_MODES:
                _check_name(join(normalise_folder(folder), path))
                out[path] = entry_sha.decode()
    return out


def _tree_entries(repo: Repo, tree_id: ObjectID, where: str) -> list[_RawEntry]:
    """A tree's raw entries; BadPathError (naming `where`, the tree's folder) when it cannot be parsed."""
    raw: bytes | None = None
    try:
        kind, raw = repo.object_store.get_raw(tree_id)
        if kind != Tree.type_num:
            return []
        return _parse_tree(raw)
    except (ObjectFormatException, ValueError) as exc:
        raise _bad_tree(where, tree_id, raw if raw is not None else _loose_raw(repo, tree_id)) from exc


def _loose_raw(repo: Repo, object_id: ObjectID) -> bytes | None:
    """The body of a loose object read from disk without parsing it (dulwich parses loose objects on read), to
    say which name broke a malformed tree; None when it is not loose here or in an alternate."""
    hexsha = object_id.decode()
    for store in [repo.object_store, *getattr(repo.object_store, "alternates", [])]:
        folder = getattr(store, "path", None)
        if not isinstance(folder, str | os.PathLike):
            continue
        file = os.path.join(folder, hexsha[:2], hexsha[2:])
        try:
            with open(file, "rb") as handle:
                data = zlib.decompress(handle.read())
        except (OSError, zlib.error):
            continue
        return data[data.index(b"\0") + 1 :] if b"\0" in data else None
    return None


def read_blob(repo: Repo, blob_id: str) -> bytes:
    obj = repo.object_store[object_id(blob_id)]
    assert isinstance(obj, Blob)
    return obj.as_raw_string()


def diff_trees(
    repo: Repo, old_tree: ObjectID | None, new_tree: ObjectID | None, folder: str = "", skip: str | None = None
) -> list[FileChange]:
    """Flow files that differ between two trees of `folder` (no rename detection: a flow's uid is what matters);
    none below the folder `skip` (a repository path: the namespace files, whose YAML files are not flows).

    A file that turns into a symlink or submodule counts as deleted; one that stops being one counts as added.
    """
    folder = normalise_folder(folder)
    out: list[FileChange] = []
    for old_entry, new_entry in _changed_entries(repo, old_tree, new_tree, folder=folder):
        old = _flow_entry(old_entry, folder, skip)
        new = _flow_entry(new_entry, folder, skip)
        if old is None and new is None:
            continue
        if old is not None and new is not None and old == new:
            continue
        out.append(
            FileChange(
                old[0] if old else None, old[1] if old else None, new[0] if new else None, new[1] if new else None
            )
        )
    return sorted(out, key=lambda c: c.new_path or c.old_path or "")


_Entry = tuple[str, int, bytes]  # (path below the folder, mode, sha)
_RawEntry = tuple[bytes, int, "ObjectID"]  # (name, mode, hex sha) as parse_tree gives them


def _parse_tree(raw: bytes) -> list[_RawEntry]:
    """A raw tree's entries. dulwich's parse_tree gives hex shas (object ids) but declares them as bytes; the compiled
    version returns a list, the pure-Python fallback an iterator, hence the list."""
    return cast("list[_RawEntry]", list(parse_tree(raw, _SHA_BYTES)))


def _changed_entries(
    repo: Repo, old_tree: ObjectID | None, new_tree: ObjectID | None, prefix: str = "", folder: str = ""
) -> Iterator[tuple[_Entry | None, _Entry | None]]:
    """Pairs of differing blob entries between two trees, descending only into sub-trees whose ids differ.

    Entries are compared through the trees' name maps, so a directory of N files with one change costs
    two tree parses and a dictionary comparison, not a Python step per entry.
    """
    if old_tree == new_tree:
        return
    where = join(folder, prefix) if prefix else folder
    old, new = _entries(repo, old_tree, where), _entries(repo, new_tree, where)
    differing = old.symmetric_difference(new)  # C-speed set work: no Python step per unchanged entry
    old_map: dict[bytes, tuple[int, ObjectID]] = {}
    new_map: dict[bytes, tuple[int, ObjectID]] = {}
    for entry in differing:  # only the entries that changed: a folder of N files with one change costs O(1) here
        (old_map if entry in old else new_map)[entry[0]] = (entry[1], entry[2])
    for name in sorted(old_map.keys() | new_map.keys()):
        a, b = old_map.get(name), new_map.get(name)
        text = name.decode("utf-8", "surrogateescape")
        path = f"{prefix}/{text}" if prefix else text
        a_tree = a[1] if a is not None and a[0] == 0o040000 else None
        b_tree = b[1] if b is not None and b[0] == 0o040000 else None
        if a_tree is not None or b_tree is not None:
            yield from _changed_entries(repo, a_tree, b_tree, path, folder)
        blob_a = (path, a[0], a[1]) if a is not None and a_tree is None else None
        blob_b = (path, b[0], b[1]) if b is not None and b_tree is None else None
        if blob_a is not None or blob_b is not None:
            yield blob_a, blob_b


def _entries(repo: Repo, tree_id: ObjectID | None, where: str = "") -> set[_RawEntry]:
    """(name, mode, hex sha) of a tree's entries, parsed straight from the raw object."""
    if tree_id is None:
        return set()
    return set(_tree_entries(repo, tree_id, where))


def _flow_entry(entry: _Entry | None, folder: str, skip: str | None = None) -> tuple[str, str] | None:
    if entry is None:
        return None
    path, mode, sha = entry
    if mode not in _FILE_MODES:
        return None
    if not is_flow_path(path):
        return None
    full = join(folder, path)
    if skip and full.startswith(skip + "/"):
        return None
    _check_name(full)
    return full, sha.decode()


def share_history(repo: Repo, a: Commit, b: Commit) -> bool:
    """True when the two commits have a common ancestor (or are the same commit)."""
    if a.id == b.id:
        return True
    return bool(find_merge_base(repo, [a.id, b.id]))


@dataclass(frozen=True)
class HistoryStep:
    """One commit of a first-parent walk and the flow files it changed relative to its first parent."""

    commit: Commit
    changes: list[FileChange]


def first_parent_changes(
    repo: Repo, start: Commit, folder: str, max_touching: int = 200, max_commits: int = 5000
) -> Iterator[HistoryStep]:
    """Walk `start`'s first-parent history, newest first, yielding the commits that changed flow files.

    Bounded twice: `max_touching` commits that touch the folder, and `max_commits` commits in all (a commit
    that leaves the folder's tree id unchanged costs one tree lookup).
    """
    commit: Commit | None = start
    touching = 0
    for _ in range(max_commits):
        if commit is None or touching >= max_touching:
            return
        parent = _first_parent(repo, commit)
        new_tree = folder_tree(repo, commit, folder)
        old_tree = folder_tree(repo, parent, folder) if parent is not None else None
        if new_tree != old_tree:
            changes = diff_trees(repo, old_tree, new_tree, folder)
            if changes:
                touching += 1
                yield HistoryStep(commit, changes)
        commit = parent


_TreeCache = dict["ObjectID", list[_RawEntry]]


def path_history(
    repo: Repo, start: Commit, paths: Iterable[str], max_commits: int = 200
) -> Iterator[tuple[Commit, dict[str, str]]]:
    """Walk `start`'s first-parent history, newest first, yielding each commit with the blob ids of `paths`.

    Looks up only the given paths (a few tree reads per commit, shared sub-trees read once), so the cost
    does not grow with the size of the repository, unlike diffing whole trees.
    """
    wanted = [p.encode() for p in paths]
    trees: _TreeCache = {}
    commit: Commit | None = start
    for _ in range(max_commits):
        if commit is None:
            return
        blobs = {}
        for path in wanted:
            blob = _lookup_blob(repo, commit.tree, path, trees)
            if blob is not None:
                blobs[path.decode()] = blob
        yield commit, blobs
        commit = _first_parent(repo, commit)


def _lookup_blob(repo: Repo, tree_id: ObjectID, path: bytes, trees: _TreeCache) -> str | None:
    parts = path.split(b"/")
    for depth, part in enumerate(parts):
        entries = trees.get(tree_id)
        if entries is None:
            kind, raw = repo.object_store.get_raw(tree_id)
            if kind != Tree.type_num:
                return None
            entries = trees[tree_id] = _parse_tree(raw)
        found = next((entry for entry in entries if entry[0] == part), None)
        if found is None:
            return None
        _, mode, sha = found
        if depth == len(parts) - 1:
            return sha.decode() if mode in _FILE_MODES else None
        tree_id = sha
    return None


def is_shallow(repo: Repo) -> bool:
    """True for a shallow clone (`git clone --depth N`): some commits' parents are not in it."""
    return bool(repo.get_shallow())


def history_cut_at(repo: Repo, commit: Commit) -> bool:
    """True when `commit` has a first parent that the repository does not hold (a shallow clone ends there)."""
    return bool(commit.parents) and commit.parents[0] not in repo.object_store


def _first_parent(repo: Repo, commit: Commit) -> Commit | None:
    if not commit.parents:
        return None
    try:
        parent = repo.object_store[commit.parents[0]]
    except KeyError:  # a shallow clone ends here
        return None
    return parent if isinstance(parent, Commit) else None
