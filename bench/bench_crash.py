"""Many more crash trials than the test suite: SIGKILL the daemon subprocess at random moments while it applies
commits (small and large repositories) and while every-second triggers fire, and print the counts of what each kill
left (the old commit, not yet fetched or fetched; the new commit). Any mixed state, duplicate fire or lost second
stops the run with the seed that reproduces it.

Run: .venv/bin/python bench/bench_crash.py [--trials 500] [--large 20] [--ticks 100] [--seed N]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_crash import Tally, run_sync_trials, run_tick_trials


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500, help="kills while applying 100 of 200 flows")
    parser.add_argument("--large", type=int, default=20, help="kills while applying 1,000 of 2,000 flows")
    parser.add_argument("--ticks", type=int, default=100, help="kills while 5 every-second triggers fire")
    parser.add_argument("--seed", type=int, default=None)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"seed {seed} (--seed {seed} replays it)", flush=True)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="gitsync-crash-") as tmp:
        root = Path(tmp)
        if args.trials:
            timed(
                "kills while applying 100 of 200 flows",
                seed,
                lambda t: run_sync_trials(root / "s", 200, 100, args.trials, rng, t),
            )
        if args.large:
            timed(
                "kills while applying 1,000 of 2,000 flows",
                seed,
                lambda t: run_sync_trials(root / "l", 2000, 1000, args.large, rng, t),
            )
        if args.ticks:
            timed(
                "kills while 5 every-second triggers fire",
                seed,
                lambda t: run_tick_trials(root / "t", 5, args.ticks, rng, t),
            )
    print("no mixed state, no duplicate fire, no lost second")


def timed(label: str, seed: int, run: Callable[[Tally], float | int]) -> None:
    tally = Tally(seed)
    started = time.monotonic()
    result = run(tally)
    extra = f"kill window {result:.3f}s" if isinstance(result, float) else f"{result} fires, none twice"
    print(f"{label}: {tally}; {extra}; {time.monotonic() - started:.0f}s", flush=True)


if __name__ == "__main__":
    main()
