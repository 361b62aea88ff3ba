"""Validate 10,000 generated flows, against a bare C-loader YAML parse of the same files in the same run.

Run: .venv/bin/python bench/bench_validate.py [COUNT]
Targets (issue 2): validation <= 2 s and <= 3x the bare parse.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flowgen import write_flows

from gitsync.compose import load_registry
from gitsync.flows.loader import load_paths


def bare_parse(paths: list[Path]) -> None:
    for path in paths:
        yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)


def best_of(runs: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    registry = load_registry()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = write_flows(root, count)
        size = statistics.mean(p.stat().st_size for p in paths)
        result = load_paths([root], registry)
        assert result.ok, result.errors[:3]
        assert len(result.flows) == count
        bare = best_of(3, lambda: bare_parse(paths))
        validate = best_of(3, lambda: load_paths([root], registry))
    print(f"flows: {count}, mean size {size:.0f} bytes")
    print(f"bare CSafeLoader parse (read + yaml.load): {bare:.3f} s")
    print(f"gitsync validate (read + parse + validate): {validate:.3f} s")
    print(
        f"ratio validate / bare parse: {validate / bare:.2f}x (target <= 3x); target <= 2 s: "
        f"{'met' if validate <= 2 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
