"""The plan of two commits: read them with dulwich, load only what changed, build the plan.

Used by `gitsync plan`, by every sync and by pull-request plans.

Cost. The folder's trees at base and head are diffed with dulwich (equal sub-trees are skipped), and only
the touched files are parsed: the base side of each changed or deleted file (to know which uids it held)
and the head side of each changed or added file. Unchanged files are never parsed or validated.

Duplicate uids. A head file can clash with an *unchanged* file only through a uid that no touched base
file held: base was valid, so a uid held by a touched base file was held by no other file. Only when such
"new" uids exist are the unchanged files' blobs read, and only those that contain both the id and the
namespace as bytes are YAML-parsed (no validation) to learn their uid. A change that only edits or
removes existing flows therefore reads nothing but the changed blobs; adding a flow costs one scan of
blob bytes, with `uid_cache` (blob id -> uid, content-addressed so it never goes stale) to skip even that
in a long-running process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dulwich.objects import Commit
from dulwich.repo import Repo

from gitsync.flows.loader import NAMESPACE_FILES, Problem, batch_allocation, duplicate_uid, load_flow_source
from gitsync.flows.yaml_source import SourceError, parse
from gitsync.git import trees as gitread
from gitsync.git.trees import FileChange
from gitsync.sync.diff import NamespaceFileChange, namespace_file_changes
from gitsync.sync.plan import FlowVersion, Plan, PlanInput, build_plan
from runner.registry import Registry

if TYPE_CHECKING:
    from dulwich.objects import ObjectID

HISTORY_COMMITS = 200
"""How many commits touching the folder the revert detection looks back over."""


@dataclass
class _HeadFile:
    """A head file the change touches: its problems and text, and the version of the flow it defines (None when
    the file does not load, or another file defines its flow)."""

    path: str
    text: str | None
    problems: list[Problem]
    version: FlowVersion | None

    def defined_in(self, other_path: str) -> None:
        """Another file defines this file's flow: an error here, and the flow is not taken from this file."""
        assert self.version is not None
        self.problems.append(duplicate_uid(self.path, self.text, self.version.uid, other_path))
        self.version = None


@dataclass(frozen=True)
class PlanComputation:
    """A plan and what it was made from: the flows each side defines (for touched files) and their texts."""

    plan: Plan
    applied: Mapping[str, FlowVersion]
    desired: Mapping[str, FlowVersion]
    texts: Mapping[str, str]
    """Head path -> YAML text, for the touched files that loaded."""


def compute_plan(
    repo_path: str,
    base_rev: str | None,
    head_rev: str,
    folder: str = "",
    namespace_prefix: str | None = None,
    *,
    registry: Registry,
    now: datetime | None = None,
    uid_cache: MutableMapping[str, str | None] | None = None,
    known_uids: Mapping[str, str] | None = None,
    detect_reverts: bool = True,
    base_folder: str | None = None,
    notes: Sequence[str] = (),
    files_folder: str | None = None,
) -> PlanComputation:
    """The plan of merging `head_rev` onto `base_rev` (None: onto nothing, a first sync).

    `known_uids` (uid -> path of every flow applied at base, e.g. from the state database) replaces the
    scan of unchanged files when checking a new uid for a clash. `detect_reverts` walks base's history to say
    which earlier commit a changed flow restores (for reviewers; a sync that only applies can skip it).
    `base_folder` compares every flow file, not only the changed ones: base's files are read from `base_folder`
    and head's from `folder` (a source whose path or namespace prefix changed since base was applied; this
    costs a read of both folders). `notes` are put first in the plan's notes. `files_folder` is the folder of
    the namespace files, relative to `folder` (`_files` by default): its files are listed as namespace files
    that change, never loaded as flows.
    Raises GitReadError for a bad repository
    or revision.
    """
    folder = gitread.normalise_folder(folder)
    compare_all = base_folder is not None and base_rev is not None
    base_folder = gitread.normalise_folder(base_folder) if base_folder is not None else folder
    files_name = gitread.normalise_folder(files_folder) or NAMESPACE_FILES
    head_files, base_files = gitread.join(folder, files_name), gitread.join(base_folder, files_name)
    repo = gitread.open_repo(repo_path)
    try:
        head = gitread.resolve(repo, head_rev)
        base = gitread.resolve(repo, base_rev) if base_rev is not None else None
        base_tree = gitread.folder_tree(repo, base, base_folder) if base is not None else None
        head_tree = gitread.folder_tree(repo, head, folder)
        if compare_all:
            changes = _every_file(repo, base_tree, base_folder, head_tree, folder, (base_files, head_files))
        else:
            changes = gitread.diff_trees(repo, base_tree, head_tree, folder, skip=head_files)
        file_changes = _namespace_files(repo, (base, base_files), (head, head_files))
        applied, base_problems = _load_base(repo, changes, registry)
        heads = _load_head(repo, changes, registry, namespace_prefix, applied)
        if known_uids is None:
            _check_clashes(repo, head_tree, (folder, head_files), changes, heads, applied, uid_cache)
        else:
            _check_known_clashes(changes, heads, applied, known_uids)
        desired = {h.version.uid: h.version for h in heads if h.version is not None}
        applied = {uid: _compared(version, desired.get(uid)) for uid, version in applied.items()}
        unreadable = {h.path for h in heads if h.version is None}
        seen, cut = _seen_versions(repo, base, applied, desired) if base is not None and detect_reverts else ({}, None)
        unrelated = base is not None and not gitread.share_history(repo, base, head)
        history_notes = _shallow_notes(repo, cut, unrelated)
        unrelated = unrelated and not gitread.is_shallow(repo)  # no common commit found in a shallow clone: unknown
    finally:
        repo.close()
    plan = build_plan(
        PlanInput(
            base=base.id.decode() if base is not None else "",
            head=head.id.decode(),
            applied=applied,
            desired=desired,
            now=now or datetime.now(UTC),
            problems=[p for h in heads for p in h.problems],
            base_problems=base_problems,
            unreadable=unreadable,
            seen=seen,
            folder=folder,
            namespace_prefix=namespace_prefix,
            unrelated_histories=unrelated,
            notes=[*notes, *_folder_notes(folder, base_tree, head_tree), *history_notes],
            namespace_files=file_changes,
            files_folder=head_files,
        )
    )
    texts = {h.path: h.text for h in heads if h.version is not None and h.text is not None}
    return PlanComputation(plan, applied, desired, texts)


def _namespace_files(
    repo: Repo, base: tuple[Commit | None, str], head: tuple[Commit, str]
) -> list[NamespaceFileChange]:
    """The namespace files that differ between base's files folder and head's (nothing read when equal)."""
    base_tree = gitread.folder_tree(repo, base[0], base[1]) if base[0] is not None else None
    head_tree = gitread.folder_tree(repo, head[0], head[1])
    if base_tree == head_tree:
        return []
    old = gitread.list_files(repo, base_tree, base[1])
    new = gitread.list_files(repo, head_tree, head[1])
    return namespace_file_changes(old, new)


def _every_file(
    repo: Repo,
    base_tree: ObjectID | None,
    base_folder: str,
    head_tree: ObjectID | None,
    folder: str,
    skip: tuple[str, str],
) -> list[FileChange]:
    """Every flow file of both sides as a change (a file equal on both sides too, so head's is checked again)."""
    old = gitread.list_flow_files(repo, base_tree, base_folder, skip=skip[0])
    new = gitread.list_flow_files(repo, head_tree, folder, skip=skip[1])
    return [
        FileChange(path if path in old else None, old.get(path), path if path in new else None, new.get(path))
        for path in sorted(old.keys() | new.keys())
    ]


def _folder_notes(folder: str, base_tree: ObjectID | None, head_tree: ObjectID | None) -> list[str]:
    if folder and base_tree is None and head_tree is None:
        return [f"folder '{folder}' exists in neither base nor head"]
    return []


def _load_base(
    repo: Repo, changes: list[FileChange], registry: Registry
) -> tuple[dict[str, FlowVersion], list[Problem]]:
    """The flows that touched base files held (validated without the prefix rule: base is what is applied), and
    the errors of those that do not load (a base that was never valid, or no longer is with these plugins). Their
    models are kept until head is loaded (`_compared` drops those no change compares)."""
    versions: dict[str, FlowVersion] = {}
    errors: list[Problem] = []
    for path, blob in sorted((c.old_path, c.old_blob) for c in changes if c.old_path and c.old_blob):
        loaded = load_flow_source(path, gitread.read_blob(repo, blob), registry)
        if loaded.flow is None:
            errors.extend(p for p in loaded.problems if p.severity == "error")
        else:
            versions.setdefault(loaded.flow.uid, FlowVersion.of(path, blob, loaded.flow))
    return versions, errors


def _load_head(
    repo: Repo,
    changes: list[FileChange],
    registry: Registry,
    namespace_prefix: str | None,
    applied: Mapping[str, FlowVersion],
) -> list[_HeadFile]:
    """The touched head files, loaded one at a time in path order: each flow's model is kept only when the plan
    compares it with a base version in another blob; a uid defined by an earlier file is an error on the later."""
    heads: list[_HeadFile] = []
    first: dict[str, str] = {}
    items = sorted((c.new_path, c.new_blob) for c in changes if c.new_path and c.new_blob)
    with batch_allocation():
        for path, blob in items:
            loaded = load_flow_source(path, gitread.read_blob(repo, blob), registry, namespace_prefix)
            version = None
            if loaded.flow is not None:
                base = applied.get(loaded.flow.uid)
                version = FlowVersion.of(path, blob, loaded.flow, keep_model=base is not None and base.blob != blob)
            head = _HeadFile(path, loaded.text, loaded.problems, version)
            del loaded  # the model goes now, unless the version keeps it
            if head.version is not None:
                if head.version.uid in first:
                    head.defined_in(first[head.version.uid])
                else:
                    first[head.version.uid] = path
            heads.append(head)
    return heads


def _compared(base: FlowVersion, head: FlowVersion | None) -> FlowVersion:
    """A base version keeps its model only when head defines the same flow in another blob (the plan compares)."""
    return base if head is not None and head.blob != base.blob else base.without_model()


def _check_clashes(
    repo: Repo,
    head_tree: ObjectID | None,
    folders: tuple[str, str],
    changes: list[FileChange],
    heads: list[_HeadFile],
    applied: Mapping[str, FlowVersion],
    uid_cache: MutableMapping[str, str | None] | None,
) -> None:
    """Mark head files whose uid an unchanged file already defines (see the module docstring for the cost).
    `folders`: the flows folder, and the namespace files folder in it."""
    new_uids = {h.version.uid: h for h in heads if h.version is not None and h.version.uid not in applied}
    if not new_uids:
        return
    touched = {c.old_path for c in changes} | {c.new_path for c in changes}
    listed = gitread.list_flow_files(repo, head_tree, folders[0], skip=folders[1])
    unchanged = {p: b for p, b in listed.items() if p not in touched}
    wanted = {(h.version.namespace, h.version.id) for h in new_uids.values() if h.version is not None}
    owners = find_uid_owners(repo, unchanged, wanted, uid_cache)
    for uid, path in sorted(owners.items()):
        new_uids[uid].defined_in(path)


def _check_known_clashes(
    changes: list[FileChange],
    heads: list[_HeadFile],
    applied: Mapping[str, FlowVersion],
    known_uids: Mapping[str, str],
) -> None:
    """Like _check_clashes, with the applied uids known up front: no file is read."""
    touched = {c.old_path for c in changes} | {c.new_path for c in changes}
    for head in heads:
        if head.version is None or head.version.uid in applied:
            continue
        path = known_uids.get(head.version.uid)
        if path is not None and path not in touched:
            head.defined_in(path)


def find_uid_owners(
    repo: Repo,
    files: Mapping[str, str],
    wanted: Iterable[tuple[str, str]],
    cache: MutableMapping[str, str | None] | None = None,
) -> dict[str, str]:
    """uid -> first path (sorted) among `files` (path -> blob id) defining it, for the (namespace, id) pairs asked."""
    cache = {} if cache is None else cache
    wanted = list(wanted)
    needles = [(ns.encode(), flow_id.encode()) for ns, flow_id in wanted]
    uids = {f"{ns}.{flow_id}" for ns, flow_id in wanted}
    owners: dict[str, str] = {}
    for path in sorted(files):
        blob = files[path]
        if blob not in cache:
            data = gitread.read_blob(repo, blob)
            if not any(fid in data and ns in data for ns, fid in needles):
                continue  # cannot define any wanted uid; not cached, since it was not parsed
            cache[blob] = _uid_of(data)
        uid = cache[blob]
        if uid in uids and uid not in owners:
            owners[uid] = path
    return owners


def _uid_of(data: bytes) -> str | None:
    try:
        parsed: Any = parse(data.decode("utf-8-sig", "replace")).data
    except SourceError:
        return None
    if isinstance(parsed, dict) and isinstance(parsed.get("namespace"), str) and isinstance(parsed.get("id"), str):
        return f"{parsed['namespace']}.{parsed['id']}"
    return None


def _seen_versions(
    repo: Repo, base: Commit, applied: Mapping[str, FlowVersion], desired: Mapping[str, FlowVersion]
) -> tuple[dict[str, str], int | None]:
    """For head versions that differ from base: the commit on base's first-parent history that introduced them,
    and, when a shallow clone's history ended before HISTORY_COMMITS, how many commits were looked at (else None).

    A revert restores a file's earlier bytes at its path, so only the changed paths are looked up in each
    commit of the history (bounded by HISTORY_COMMITS), never whole trees. Walking newest first, the
    introducing commit is the oldest of the run of commits that hold the version.
    """
    targets = {v.path: v.blob for uid, v in desired.items() if uid not in applied or applied[uid].blob != v.blob}
    seen: dict[str, str] = {}
    if not targets:
        return seen, None
    full = targets  # paths from diff_trees are repository-relative already
    done: set[str] = set()
    walked, last = 0, base
    for commit, blobs in gitread.path_history(repo, base, full, max_commits=HISTORY_COMMITS):
        walked, last = walked + 1, commit
        for path, target in full.items():
            if path in done:
                continue
            if blobs.get(path) == target:
                seen[target] = commit.id.decode()
            elif target in seen:
                done.add(path)
        if len(done) == len(full):
            return seen, None
    cut = walked < HISTORY_COMMITS and gitread.history_cut_at(repo, last)
    return seen, walked if cut else None


def _shallow_notes(repo: Repo, cut: int | None, unrelated: bool) -> list[str]:
    """What a shallow clone (CI's `git clone --depth N`) kept the plan from knowing."""
    notes = []
    if cut is not None:
        notes.append(
            f"the clone is shallow: reverts were looked for in only {cut} commit(s) of base's history (a full clone "
            f"looks at up to {HISTORY_COMMITS}), so a change that restores an older version may not say so; fetch "
            f"more history (e.g. `git fetch --deepen={HISTORY_COMMITS}`)"
        )
    if unrelated and gitread.is_shallow(repo):
        notes.append(
            "the clone is shallow: whether base and head share any commit could not be told; fetch more history "
            "(e.g. `git fetch --unshallow`)"
        )
    return notes
