"""`validate --watch`: validate once, then again after every change to the watched paths."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from watchfiles import watch

from gitsync.flows.loader import FLOW_SUFFIXES


def _is_flow_change(change: object, path: str) -> bool:
    return path.endswith(FLOW_SUFFIXES)


def watch_and_validate(paths: Sequence[str], validate: Callable[[], int]) -> int:
    """Runs until interrupted; returns the exit code of the last validation."""
    code = validate()
    try:
        for _changes in watch(*paths, watch_filter=_is_flow_change, debounce=200, step=50):
            print("--- change detected, validating again", flush=True)
            code = validate()
    except KeyboardInterrupt:
        pass
    return code
