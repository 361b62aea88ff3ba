"""One review: validate and plan the head against the base, show the problems where the CI shows them, and post
the `gitsync/plan` status and the one plan comment to the pull request.

The plan is the one a sync and the daemon's pull-request planner make (`gitsync.sync.compute.compute_plan`); the
status's description and the comment, with its hidden marker, come from `gitsync.sync.pull_requests`, so a
daemon planning the same pull request edits the same comment rather than posting a second.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TextIO

from gitsync.hosts import PROVIDERS, HostError, StatusPost
from gitsync.review.ci import PERMISSION_HELP, Target
from gitsync.review.commits import gather
from gitsync.review.report import code_quality, workflow_commands
from gitsync.sync.compute import compute_plan
from gitsync.sync.plan import Plan
from gitsync.sync.pull_requests import PLAN_CONTEXT, describe, post_plan_comment
from gitsync.sync.render import render_markdown, render_text, short
from runner.registry import Registry

WORKFLOW_COMMAND_HOSTS = ("github", "gitea")


def review(
    target: Target,
    *,
    repo_dir: str,
    path: str,
    namespace_prefix: str | None,
    data_dir: str | None,
    registry: Registry,
    out: TextIO,
    err: TextIO,
) -> int:
    """Exit 0 when the head is valid, 1 when it is not, 2 when the review could not be posted. Raises FetchError
    or GitReadError when there is nothing to plan (the command line says so and exits 2)."""
    with tempfile.TemporaryDirectory(prefix="gitsync-review-") as scratch:
        commits = gather(target, repo_dir, Path(data_dir or scratch))
        if commits.fetched:
            print(f"gitsync review: {commits.fetched}", file=err, flush=True)
        plan = compute_plan(
            commits.repo_path,
            commits.base,
            commits.head,
            folder=path,
            namespace_prefix=namespace_prefix,
            registry=registry,
            notes=commits.notes,
        ).plan
    show(target, plan, out)
    code = post(target, plan, err)
    return code if code else (0 if plan.valid else 1)


def show(target: Target, plan: Plan, out: TextIO) -> None:
    """The annotations, the code-quality report and the step summary of the CI, and the plan as text."""
    problems = [*plan.errors, *plan.warnings]
    if target.host in WORKFLOW_COMMAND_HOSTS:
        for line in workflow_commands(problems):
            out.write(line + "\n")
    if target.code_quality:
        Path(target.code_quality).write_text(code_quality(problems), encoding="utf-8")
    out.write(render_text(plan))
    out.flush()
    if target.step_summary:
        with open(target.step_summary, "a", encoding="utf-8") as summary:
            summary.write(render_markdown(plan) + "\n")


def post(target: Target, plan: Plan, err: TextIO) -> int:
    """The status on the head and the one plan comment; 0 when both were posted, 2 when the host refused."""
    provider = PROVIDERS[target.host](target.repository, target.token, target.api_url)
    state, description = describe(plan)
    try:
        provider.post_status(StatusPost(plan.head, PLAN_CONTEXT, state, description, target.target_url))
        comment = post_plan_comment(provider, target.number, plan, target.source)
    except HostError as exc:
        refused = exc.status in (401, 403, 404)
        hint = f"; {PERMISSION_HELP[target.host]} ({target.token_env} was used)" if refused else ""
        print(
            f"gitsync review: the plan was made but not posted to pull request #{target.number} of "
            f"{target.repository} on {target.api_url}: {exc}{hint}",
            file=err,
            flush=True,
        )
        return 2
    finally:
        provider.close()
    done = "posted" if comment.created else "edited in place"
    print(
        f"gitsync review: status {PLAN_CONTEXT} {state} on {short(plan.head)}; the plan comment on pull request "
        f"#{target.number} {done}",
        file=err,
        flush=True,
    )
    return 0
