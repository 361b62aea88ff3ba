"""A realistic chain as a user runs it: `gitsync run --file` of N Return tasks, each with its own expression.

Real flows have a different expression in almost every task, so the template cache does not help them: this
measures what they cost. The figure is the marginal cost per task, (time of 1,010 tasks - time of 10 tasks) /
1,000, whole processes (start-up cancels out), medians of `--rounds`, interleaved with the references:

- the same chain with one expression repeated in every task (every task after the first hits the cache): the
  floor for expressions;
- `--compare PYTHON`: the same commands run by another checkout's interpreter (e.g. the commit before a
  change), interleaved, with the ratio;
- Prefect 3 and Dagster per-task figures as ../shared/bench-peers/README.md publishes them (labelled so).

Run: .venv/bin/python bench/bench_chain.py [--rounds 5] [--compare /path/to/other/.venv/bin/python]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = (10, 1010)
PUBLISHED = {"Prefect 3.8.8": 7.1, "Dagster 1.13": 11.0}
"""ms per task at N=1000, from bench-peers/README.md (2026-11-24, 2 cores)."""


def chain(n: int, distinct: bool) -> str:
    lines = [f"id: chain{n}{'d' if distinct else 'r'}", "namespace: bench", "tasks:"]
    for k in range(n):
        expression = f"{{{{ {k} + 1 }}}}" if distinct else "{{ 1 + 1 }}"
        lines += [f"  - id: t{k}", "    type: io.kestra.plugin.core.debug.Return", f'    format: "{expression}"']
    return "\n".join(lines) + "\n"


def run_once(python: str, flow: Path, work: Path) -> float:
    db, data = work / f"{time.monotonic_ns()}.db", work / "data"
    start = time.perf_counter()
    subprocess.run(
        [python, "-m", "gitsync", "run", "--file", str(flow), "--quiet", "--db", str(db), "--data-dir", str(data)],
        check=True,
        capture_output=True,
        cwd=work,  # `-m` puts the working directory first on sys.path: each interpreter must import its own gitsync
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compare", help="another checkout's python, run interleaved as the reference")
    args = parser.parse_args()
    pythons = {"this checkout": sys.executable}
    if args.compare:
        pythons["compared"] = args.compare
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        flows = {}
        for distinct in (True, False):
            for n in SIZES:
                path = work / f"chain{n}{'d' if distinct else 'r'}.yaml"
                path.write_text(chain(n, distinct))
                flows[(n, distinct)] = path
        times: dict[tuple[str, int, bool], list[float]] = {}
        for _ in range(args.rounds):
            for name, python in pythons.items():
                for key, flow in flows.items():
                    times.setdefault((name, *key), []).append(run_once(python, flow, work))

        def marginal(name: str, distinct: bool) -> float:
            big = statistics.median(times[(name, SIZES[1], distinct)])
            small = statistics.median(times[(name, SIZES[0], distinct)])
            return (big - small) / (SIZES[1] - SIZES[0]) * 1000

        for name in pythons:
            real, repeated = marginal(name, True), marginal(name, False)
            print(
                f"{name}: a different expression in every task {real:.3f} ms/task; one repeated expression "
                f"{repeated:.3f} ms/task (ratio {real / repeated:.2f}x); start-up and 10 tasks "
                f"{statistics.median(times[(name, SIZES[0], True)]):.2f} s (medians of {args.rounds})"
            )
        if args.compare:
            ratio = marginal("this checkout", True) / marginal("compared", True)
            print(f"this checkout / compared, different expressions: {ratio:.2f}x")
        for peer, ms in PUBLISHED.items():
            print(f"{peer}: {ms} ms/task (published in bench-peers/README.md, not measured in this run)")


if __name__ == "__main__":
    main()
