"""`gitsync plan` of a one-file change on a 1,000-flow and a 10,000-flow repository (same run).

Run: .venv/bin/python bench/bench_plan.py
Targets (issue 2): at most 100 ms, and the two within 1.5x of each other.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gitgen import commit_files, flow_repo

from gitsync.compose import load_registry
from gitsync.sync.compute import compute_plan
from runner.registry import Registry


def measure(count: int, registry: Registry, runs: int = 25) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        repo, files, first = flow_repo(Path(tmp) / "repo", count)
        path = "flows/team4/flow_00004.yaml"
        changed = dict(files)
        changed[path] = files[path].replace(b"echo 4", b"echo four")
        second = commit_files(repo, changed, "edit one flow", parent=first)
        added = dict(changed)
        added["flows/team4/new_flow.yaml"] = files[path].replace(b"id: flow_00004", b"id: brand_new")
        third = commit_files(repo, added, "add one flow", parent=second)
        repo.object_store.pack_loose_objects()  # as a clone or fetch leaves them
        repo.close()
        edit, add = [], []
        repo_dir = str(Path(tmp) / "repo")
        for _ in range(runs):
            start = time.perf_counter()
            plan = compute_plan(repo_dir, first.decode(), second.decode(), folder="flows", registry=registry).plan
            edit.append(time.perf_counter() - start)
            assert plan.valid and plan.flow_uids("changed") == ["bench.team4.flow_00004"], plan.as_dict()
            start = time.perf_counter()
            plan = compute_plan(repo_dir, second.decode(), third.decode(), folder="flows", registry=registry).plan
            add.append(time.perf_counter() - start)
            assert plan.valid and plan.flow_uids("added") == ["bench.team4.brand_new"], plan.as_dict()
        return min(edit), min(add)


def main() -> None:
    registry = load_registry()  # plugin loading is start-up cost, not plan cost
    small_edit, small_add = measure(1_000, registry)
    large_edit, large_add = measure(10_000, registry)
    print(
        f"plan, one file edited:  1,000 flows {small_edit * 1000:.1f} ms; 10,000 flows {large_edit * 1000:.1f} ms; "
        f"ratio {large_edit / small_edit:.2f}x (target <= 1.5x, <= 100 ms)"
    )
    print(
        f"plan, one file added:   1,000 flows {small_add * 1000:.1f} ms; 10,000 flows {large_add * 1000:.1f} ms; "
        f"ratio {large_add / small_add:.2f}x"
    )


if __name__ == "__main__":
    main()
