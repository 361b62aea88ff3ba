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

from gitsync.flows.loader import LoadedFile, Problem, load_flow_source, load_flow_sources
from gitsync.flows.yaml_source import SourceError, locate, parse
from gitsync.git import trees as gitread
from gitsync.git.trees import FileChange
from gitsync.sync.plan import FlowVersion, Plan, PlanInput, build_plan
from runner.registry import Registry

if TYPE_CHECKING:
    from dulwich.objects import ObjectID

HISTORY_COMMITS = 200
"""How many commits touching the folder the revert detection looks back over."""


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
) -> PlanComputation:
    """The plan of merging `head_rev` onto `base_rev` (None: onto nothing, a first sync).

    `known_uids` (uid -> path of every flow applied at base, e.g. from the state database) replaces the
    scan of unchanged files when checking a new uid for a clash. `detect_reverts` walks base's history to say
    which earlier commit a changed flow restores (for reviewers; a sync that only applies can skip it).
    `base_folder` compares every flow file, not only the changed ones: base's files are read from `base_folder`
    and head's from `folder` (a source whose path or namespace prefix changed since base was applied; this
    costs a read of both folders). `notes` are put first in the plan's notes.
    Raises GitReadError for a bad repository
    or revision.
    """
    folder = gitread.normalise_folder(folder)
    compare_all = base_folder is not None and base_rev is not None
    base_folder = gitread.normalise_folder(base_folder) if base_folder is not None else folder
    repo = gitread.open_repo(repo_path)
    try:
        head = gitread.resolve(repo, head_rev)
        base = gitread.resolve(repo, base_rev) if base_rev is not None else None
        base_tree = gitread.folder_tree(repo, base, base_folder) if base is not None else None
        head_tree = gitread.folder_tree(repo, head, folder)
        if compare_all:
            changes = _every_file(repo, base_tree, base_folder, head_tree, folder)
        else:
            changes = gitread.diff_trees(repo, base_tree, head_tree, folder)
        applied, base_problems = _load_base(repo, changes, registry)
        loaded = load_flow_sources(
            ((c.new_path, gitread.read_blob(repo, c.new_blob)) for c in changes if c.new_path and c.new_blob),
            registry,
            namespace_prefix,
        )
        blobs = {c.new_path: c.new_blob for c in changes if c.new_path and c.new_blob}
        if known_uids is None:
            _check_clashes(repo, head_tree, folder, changes, loaded.files, applied, uid_cache)
        else:
            _check_known_clashes(changes, loaded.files, applied, known_uids)
        desired = _versions(loaded.files, blobs)
        unreadable = {f.path for f in loaded.files if f.flow is None}
        seen = _seen_versions(repo, base, folder, applied, desired) if base is not None and detect_reverts else {}
        unrelated = base is not None and not gitread.share_history(repo, base, head)
    finally:
        repo.close()
    plan = build_plan(
        PlanInput(
            base=base.id.decode() if base is not None else "",
            head=head.id.decode(),
            applied=applied,
            desired=desired,
            now=now or datetime.now(UTC),
            problems=loaded.all_problems,
            base_problems=base_problems,
            unreadable=unreadable,
            seen=seen,
            folder=folder,
            namespace_prefix=namespace_prefix,
            unrelated_histories=unrelated,
            notes=[*notes, *_folder_notes(folder, base_tree, head_tree)],
        )
    )
    texts = {f.path: f.text for f in loaded.files if f.flow is not None and f.text is not None}
    return PlanComputation(plan, applied, desired, texts)


def _every_file(
    repo: Repo, base_tree: ObjectID | None, base_folder: str, head_tree: ObjectID | None, folder: str
) -> list[FileChange]:
    """Every flow file of both sides as a change (a file equal on both sides too, so head's is checked again)."""
    old = gitread.list_flow_files(repo, base_tree, base_folder)
    new = gitread.list_flow_files(repo, head_tree, folder)
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
    the errors of those that do not load (a base that was never valid, or no longer is with these plugins)."""
    items = [(c.old_path, c.old_blob) for c in changes if c.old_path and c.old_blob]
    files = [load_flow_source(path, gitread.read_blob(repo, blob), registry) for path, blob in items]
    errors = [p for f in files if f.flow is None for p in f.problems if p.severity == "error"]
    return _versions(files, dict(items)), errors


def _versions(files: Iterable[LoadedFile], blobs: Mapping[str, str]) -> dict[str, FlowVersion]:
    out: dict[str, FlowVersion] = {}
    for loaded in sorted(files, key=lambda f: f.path):
        if loaded.flow is not None:
            out.setdefault(loaded.flow.uid, FlowVersion(loaded.path, blobs[loaded.path], loaded.flow))
    return out


def _check_clashes(
    repo: Repo,
    head_tree: ObjectID | None,
    folder: str,
    changes: list[FileChange],
    head_files: list[LoadedFile],
    applied: Mapping[str, FlowVersion],
    uid_cache: MutableMapping[str, str | None] | None,
) -> None:
    """Mark head files whose uid an unchanged file already defines (see the module docstring for the cost)."""
    new_uids = {f.flow.uid: f for f in head_files if f.flow is not None and f.flow.uid not in applied}
    if not new_uids:
        return
    touched = {c.old_path for c in changes} | {c.new_path for c in changes}
    unchanged = {p: b for p, b in gitread.list_flow_files(repo, head_tree, folder).items() if p not in touched}
    wanted = {(f.flow.namespace, f.flow.id) for f in new_uids.values() if f.flow is not None}
    owners = find_uid_owners(repo, unchanged, wanted, uid_cache)
    for uid, path in sorted(owners.items()):
        loaded = new_uids[uid]
        line, column = _id_position(loaded.text)
        message = f"flow '{uid}' is also defined in {path} (each flow lives in exactly one file)"
        loaded.problems.append(Problem(loaded.path, line, column, message, flow=uid))
        loaded.flow = None


def _check_known_clashes(
    changes: list[FileChange],
    head_files: list[LoadedFile],
    applied: Mapping[str, FlowVersion],
    known_uids: Mapping[str, str],
) -> None:
    """Like _check_clashes, with the applied uids known up front: no file is read."""
    touched = {c.old_path for c in changes} | {c.new_path for c in changes}
    for loaded in head_files:
        if loaded.flow is None or loaded.flow.uid in applied:
            continue
        uid = loaded.flow.uid
        path = known_uids.get(uid)
        if path is not None and path not in touched:
            line, column = _id_position(loaded.text)
            message = f"flow '{uid}' is also defined in {path} (each flow lives in exactly one file)"
            loaded.problems.append(Problem(loaded.path, line, column, message, flow=uid))
            loaded.flow = None


def _id_position(text: str | None) -> tuple[int | None, int | None]:
    try:
        position = locate(parse(text or "").root, ("id",))
    except SourceError:
        position = None
    return position if position else (None, None)


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
    repo: Repo, base: Commit, folder: str, applied: Mapping[str, FlowVersion], desired: Mapping[str, FlowVersion]
) -> dict[str, str]:
    """For head versions that differ from base: the commit on base's first-parent history that introduced them.

    A revert restores a file's earlier bytes at its path, so only the changed paths are looked up in each
    commit of the history (bounded by HISTORY_COMMITS), never whole trees. Walking newest first, the
    introducing commit is the oldest of the run of commits that hold the version.
    """
    targets = {v.path: v.blob for uid, v in desired.items() if uid not in applied or applied[uid].blob != v.blob}
    seen: dict[str, str] = {}
    if not targets:
        return seen
    full = targets  # paths from diff_trees are repository-relative already
    done: set[str] = set()
    for commit, blobs in gitread.path_history(repo, base, full, max_commits=HISTORY_COMMITS):
        for path, target in full.items():
            if path in done:
                continue
            if blobs.get(path) == target:
                seen[target] = commit.id.decode()
            elif target in seen:
                done.add(path)
        if len(done) == len(full):
            break
    return seen
