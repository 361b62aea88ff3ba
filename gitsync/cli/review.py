"""`gitsync review`: the CI's review of one pull request (gitsync.review)."""

from __future__ import annotations

import argparse
import os
import sys

from gitsync.compose import load_registry
from gitsync.review.ci import Flags, detect
from gitsync.review.run import review


def run_review(args: argparse.Namespace) -> int:
    flags = Flags(
        host=args.host,
        api_url=args.api_url,
        repository=args.repository,
        pull_request=args.pull_request,
        base=args.base,
        head=args.head,
        token_env=args.token_env,
        remote=args.remote,
        source=args.source,
        code_quality=args.code_quality,
    )
    target = detect(os.environ, flags)  # before any work: a missing token or pull request is said at once
    return review(
        target,
        repo_dir=args.repo,
        path=args.path,
        namespace_prefix=args.namespace_prefix,
        data_dir=args.data_dir,
        registry=load_registry(),
        out=sys.stdout,
        err=sys.stderr,
    )
