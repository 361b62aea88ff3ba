"""`gitsync plan --repo DIR --base REV --head REV`: the plan that merging head onto base would apply."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import TextIO

from gitsync.git.trees import GitReadError
from gitsync.sync.compute import compute_plan
from gitsync.sync.render import RENDERERS
from runner.registry import Registry


def run_plan(
    args: argparse.Namespace,
    *,
    registry: Registry,
    now: datetime | None = None,
    out: TextIO | None = None,
) -> int:
    """Exit 0 when head is valid, 1 when it is not, 2 for a bad repository or revision."""
    out = out or sys.stdout
    try:
        plan = compute_plan(
            args.repo,
            args.base,
            args.head,
            folder=args.path or "",
            namespace_prefix=args.namespace_prefix,
            registry=registry,
            now=now,
        ).plan
    except GitReadError as exc:
        print(f"gitsync plan: {exc}", file=sys.stderr)
        return 2
    text = RENDERERS[args.format](plan)
    out.write(text if text.endswith("\n") else text + "\n")
    out.flush()
    return 0 if plan.valid else 1
