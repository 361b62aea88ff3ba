"""Start-up and memory figures (issue 12, points 2 and 5), each printed beside its reference from the same run.

1. Commands, as a user types them (the `gitsync` script beside this interpreter): `--help`, `--version`,
   `validate` of one small example file and of `examples/flows`; each round runs every command and the bare
   `python -c "import yaml, pydantic, jinja2"` of the same interpreter once, interleaved; medians of the rounds
   (after a warm-up round that writes the bytecode caches; see `env`).
   Targets: `--help` <= 2x, `validate` of one small file <= 3x the bare import.
2. The daemon of the README's first command (`daemon --repo . --path examples/flows --namespace-prefix acme`, with a
   temporary db and data dir and a free port): seconds from spawn to the first 200 from `/healthz` (target <= 1 s),
   then, once the first sync has settled, its VmRSS and VmHWM (/proc/PID/status; target RSS < 60 MB), beside the
   RSS of the bare import.
3. The same daemon on a generated repository of 10,000 flows (bench/gitgen.py; one in three has a Schedule
   trigger): RSS after it synced (target < 120 MB) and VmHWM (the first sync's peak), median of a few starts and
   their range: what the first sync's allocations leave behind varies from run to run.

Run: .venv/bin/python bench/bench_startup.py [--rounds 9] [--daemon-rounds 3] [--flows 10000] [--large-rounds 3]
     [--skip-large]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

PYTHON = sys.executable
SCRIPT = Path(PYTHON).parent / "gitsync"
GITSYNC = [str(SCRIPT)] if SCRIPT.exists() else [PYTHON, "-m", "gitsync"]
BARE = [PYTHON, "-c", "import yaml, pydantic, jinja2"]
SMALL = ROOT / "examples" / "flows" / "demo" / "hello.yaml"
EXAMPLES = ROOT / "examples" / "flows"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="gitsync start-up and memory figures")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds of the commands")
    parser.add_argument("--daemon-rounds", type=int, default=3, help="daemon starts on the examples")
    parser.add_argument("--flows", type=int, default=10_000, help="flows of the generated repository")
    parser.add_argument("--large-rounds", type=int, default=3, help="daemon starts on the generated repository")
    parser.add_argument("--skip-large", action="store_true", help="no daemon on the generated repository")
    return parser.parse_args()


def env() -> dict[str, str]:
    """This environment without GITSYNC_* overrides, and with bytecode caches written and read as an installed
    Python does (PYTHONDONTWRITEBYTECODE would compile gitsync's own modules from source on every start, while
    the reference's site-packages come compiled)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GITSYNC_") and k != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str], expect: int = 0) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env(), capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != expect:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr.decode()[-2000:]}")
    return elapsed


# -- 1: commands ---------------------------------------------------------------------------------------------------

COMMANDS: dict[str, tuple[list[str], float | None]] = {
    "gitsync --help": ([*GITSYNC, "--help"], 2.0),
    "gitsync --version": ([*GITSYNC, "--version"], None),
    f"gitsync validate {SMALL.relative_to(ROOT)}": ([*GITSYNC, "validate", str(SMALL)], 3.0),
    f"gitsync validate {EXAMPLES.relative_to(ROOT)}": ([*GITSYNC, "validate", str(EXAMPLES)], None),
}


def commands(rounds: int) -> None:
    samples: dict[str, list[float]] = {"bare": [], **{name: [] for name in COMMANDS}}
    timed(BARE)  # warm the page cache and the bytecode caches
    for command, _ in COMMANDS.values():
        timed(command)
    for _ in range(rounds):
        samples["bare"].append(timed(BARE))
        for name, (command, _) in COMMANDS.items():
            samples[name].append(timed(command))
    bare = statistics.median(samples["bare"])
    print(f"commands, median of {rounds} interleaved rounds ({PYTHON}):")
    print(f"  reference: python -c 'import yaml, pydantic, jinja2': {bare * 1000:7.0f} ms")
    for name, (_, target) in COMMANDS.items():
        median = statistics.median(samples[name])
        ratio = median / bare
        verdict = "" if target is None else f" (target <= {target:g}x: {'met' if ratio <= target else 'NOT met'})"
        print(f"  {name + ':':<40} {median * 1000:7.0f} ms  {ratio:5.2f}x{verdict}")


# -- 2, 3: the daemon ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status_kb(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def bare_rss_mb() -> float:
    code = "import yaml, pydantic, jinja2; print(open('/proc/self/status').read())"
    text = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True, env=env()).stdout
    line = next(x for x in text.splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def get_health(port: int) -> tuple[int, dict[str, object]] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return None


def wait(
    condition: Callable[[], object],
    proc: subprocess.Popen[bytes],
    log: Path,
    what: str,
    timeout: float,
    interval: float = 0.005,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise SystemExit(
                f"the daemon exited ({proc.returncode}) while waiting for {what}:\n{log.read_text()[-3000:]}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(interval)


def synced(port: int, outcome: str) -> bool:
    answer = get_health(port)
    if answer is None:
        return False
    sources = answer[1].get("sources")
    return (
        isinstance(sources, dict)
        and bool(sources)
        and all(isinstance(s, dict) and s.get("outcome") == outcome for s in sources.values())
    )


def daemon_run(tmp: Path, repo: Path, path: str, prefix: str | None, settle: float = 2.0) -> dict[str, float]:
    """Spawn the daemon; seconds to the first 200 from /healthz; RSS and HWM (MB) after the first sync settled."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    command = [*GITSYNC, "daemon", "--repo", str(repo), "--path", path]
    command += ["--namespace-prefix", prefix] if prefix else []
    command += ["--db", str(tmp / "gitsync.db"), "--data-dir", str(tmp / "data"), "--listen", f"127.0.0.1:{port}"]
    log = tmp / "daemon.log"
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=tmp, env=env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        first: list[float] = []

        def healthy() -> bool:
            answer = get_health(port)
            if answer is not None and answer[0] == 200:
                first.append(time.perf_counter() - started)
            return bool(first)

        wait(healthy, proc, log, "the first 200 from /healthz", 120)
        # ten times a second, not as fast as the first answer above (each request allocates while the sync runs)
        wait(lambda: synced(port, "applied"), proc, log, "the first sync", 900, interval=0.1)
        synced_at = time.perf_counter() - started
        time.sleep(settle)
        kb = status_kb(proc.pid)
        return {"healthz": first[0], "synced": synced_at, "rss": kb["VmRSS"] / 1024, "hwm": kb["VmHWM"] / 1024}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def daemons(rounds: int, flows: int, skip_large: bool, large_rounds: int) -> None:
    bare = bare_rss_mb()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        runs = [daemon_run(Path(tmp) / f"examples-{n}", ROOT, "examples/flows", "acme") for n in range(rounds)]
        print(f"daemon on the examples (README's first command), median of {rounds} starts:")
        print(f"  reference: RSS of python -c 'import yaml, pydantic, jinja2': {bare:6.1f} MB")
        healthz = statistics.median(r["healthz"] for r in runs)
        verdict = "met" if healthz <= 1 else "NOT met"
        print(f"  spawn to first 200 from /healthz: {healthz:6.2f} s (target <= 1 s: {verdict})")
        print(f"  spawn to first sync applied:      {statistics.median(r['synced'] for r in runs):6.2f} s")
        rss = statistics.median(r["rss"] for r in runs)
        hwm = statistics.median(r["hwm"] for r in runs)
        print(
            f"  idle RSS after the first sync:    {rss:6.1f} MB  {rss / bare:5.2f}x the bare import "
            f"(target < 60 MB: {'met' if rss < 60 else 'NOT met'}); VmHWM {hwm:6.1f} MB"
        )
        if skip_large:
            return
        sys.path.insert(0, str(ROOT / "bench"))
        from gitgen import flow_repo

        repo_dir = Path(tmp) / "large-repo"
        flow_repo(repo_dir, flows)
        large = [daemon_run(Path(tmp) / f"large-{n}", repo_dir, "flows", None, settle=5.0) for n in range(large_rounds)]
        rss = statistics.median(r["rss"] for r in large)
        spread = f"{min(r['rss'] for r in large):.1f}-{max(r['rss'] for r in large):.1f}"
        triggers = f"{flows // 3:,} Schedule triggers"
        print(f"daemon on a generated repository of {flows:,} flows ({triggers}), median of {large_rounds} starts:")
        print(f"  spawn to first sync applied:      {statistics.median(r['synced'] for r in large):6.2f} s")
        print(
            f"  RSS after it synced:              {rss:6.1f} MB  {rss / bare:5.2f}x the bare import "
            f"(target < 120 MB: {'met' if rss < 120 else 'NOT met'}); runs {spread} MB; "
            f"VmHWM {statistics.median(r['hwm'] for r in large):6.1f} MB"
        )


def main() -> None:
    args = parse_args()
    commands(args.rounds)
    daemons(args.daemon_rounds, args.flows, args.skip_large, args.large_rounds)


if __name__ == "__main__":
    main()
