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


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default=".", help="path of a local git repository (default: .)")
    parser.add_argument("--base", required=True, help="the revision merged into (sha, branch, tag, HEAD~1 …)")
    parser.add_argument("--head", required=True, help="the revision to merge")
    parser.add_argument("--path", default="", help="folder of the flows inside the repository (default: root)")
    parser.add_argument("--namespace-prefix", default=None, help="namespace prefix the flows must stay inside")
    parser.add_argument("--format", choices=sorted(RENDERERS), default="text")


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
