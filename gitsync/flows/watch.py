"""`validate --watch`: validate once, then again after every change to the watched paths."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from watchfiles import watch

from gitsync.flows.loader import FLOW_SUFFIXES


def _is_flow_change(change: object, path: str) -> bool:
    return path.endswith(FLOW_SUFFIXES)


def watch_and_validate(paths: Sequence[str], validate: Callable[[], int]) -> int:
    """Runs until interrupted; returns the exit code of the last validation. What it watches, and how to stop it,
    goes to stderr (stdout holds the reports, in the format asked for)."""
    code = validate()
    watched = ", ".join(os.path.abspath(path) for path in paths)
    suffixes = ", ".join(FLOW_SUFFIXES)
    notice = f"watching {watched} for changes to flow files ({suffixes}); press Ctrl-C to stop"
    try:  # from the notice on, Ctrl-C stops quietly with the last validation's code
        print(notice, file=sys.stderr, flush=True)
        for _changes in watch(*paths, watch_filter=_is_flow_change, debounce=200, step=50):
            print("--- change detected, validating again", flush=True)
            code = validate()
    except KeyboardInterrupt:
        print("stopped watching", file=sys.stderr, flush=True)
    return code
