"""Pull requests: plan the head against the base and report it (a `gitsync/plan` status and one sticky comment).

Nothing of a pull request's head is ever applied or run: its commit is fetched into the cache under
`refs/gitsync/…` and only read. Work happens on a thread of its own, never on the webhook's request.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

from gitsync.config import Settings, SourceConfig
from gitsync.errors import GitSyncError
from gitsync.hosts import ProviderUnavailable, provider_for
from gitsync.hosts.base import CommentResult, HostError, StatusProvider, hidden_marker, shorten_markdown
from gitsync.hosts.webhooks import PullRequest, WebhookEvent
from gitsync.state import outbox
from gitsync.state.database import Store
from gitsync.sync.plan import Plan
from runner.registry import Registry

log = logging.getLogger("gitsync.pull_requests")

PLAN_CONTEXT = "gitsync/plan"
CLOSED_ACTIONS = frozenset({"closed", "close", "merge", "merged"})


@dataclass(frozen=True)
class PlanJob:
    source: str
    host: str
    pull_request: PullRequest


def head_ref(host: str, number: int) -> str:
    """Where each host publishes a pull request's head."""
    return f"refs/merge-requests/{number}/head" if host == "gitlab" else f"refs/pull/{number}/head"


def describe(plan: Plan) -> tuple[str, str]:
    """The status for a plan: (state, description)."""
    if not plan.valid:
        first = plan.errors[0]
        where = f"{first.path}:{first.line}: " if first.line else f"{first.path}: "
        more = f" (+{len(plan.errors) - 1} more)" if len(plan.errors) > 1 else ""
        return "failure", f"{where}{first.message}{more}"
    flows = f"+{len(plan.flow_uids('added'))} ~{len(plan.flow_uids('changed'))} -{len(plan.flow_uids('removed'))}"
    return "success", f"plan: {flows} flows, {len(plan.triggers)} trigger change(s)"


def plan_marker(source_name: str) -> str:
    """The hidden marker of a source's plan comment: whoever posts it (the daemon, `gitsync review` in CI) finds and
    edits the one comment holding it."""
    return f"gitsync:plan:{source_name}"


def post_plan_comment(provider: StatusProvider, number: int, plan: Plan, source_name: str) -> CommentResult:
    """The markdown plan as the one comment of pull request `number`: posted the first time, edited in place after
    (found by `plan_marker`). Raises HostError."""
    from gitsync.sync.render import render_markdown

    marker = plan_marker(source_name)
    tag = hidden_marker(marker) + "\n"  # the comment holds the marker too: the limit is for both
    body = render_markdown(plan, limit=provider.comment_limit - len(tag))
    return provider.upsert_comment(number, shorten_markdown(tag + body, provider.comment_limit), marker=marker)


class PullRequestPlanner:
    """Plans pull requests on its own thread; `submit` only enqueues (it runs on the webhook's request)."""

    def __init__(self, settings: Settings, store: Store, registry: Registry, wake: object = None) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.wake = wake
        self._jobs: queue.Queue[PlanJob | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def submit(self, source: str, event: WebhookEvent) -> None:
        pr = event.pull_request
        if pr is None or pr.action in CLOSED_ACTIONS:
            return
        if self.settings.source(source).status is None:  # nothing would post the plan's status or comment
            log.info(
                "pull request #%d of %s: not planned: the source has no status: block (add one to report plans)",
                pr.number,
                source,
            )
            return
        self._jobs.put(PlanJob(source, event.host, pr))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="pull-requests", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._jobs.put(None)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self.plan(job)
            except Exception:  # one bad pull request must not stop the others
                log.exception("planning pull request #%s of %s failed", job.pull_request.number, job.source)

    def plan(self, job: PlanJob) -> Plan | None:
        # dulwich and the loader are imported on the planner's thread, when a pull request comes: a daemon answers
        # /healthz without them
        from gitsync.git.fetch import fetch, fetch_ref
        from gitsync.git.trees import GitReadError
        from gitsync.sync.compute import compute_plan

        source = self.settings.source(job.source)
        pr = job.pull_request
        data_dir = Path(self.settings.data_dir)
        try:
            base = fetch(source.model_copy(update={"branch": pr.base_ref}), data_dir)
            head = fetch_ref(source, data_dir, head_ref(job.host, pr.number))
            plan = compute_plan(
                str(base.repo_path),
                base.commit,
                head,
                folder=source.path,
                namespace_prefix=source.namespace_prefix,
                files_folder=source.namespace_files,
                registry=self.registry,
            ).plan
        except (GitSyncError, GitReadError) as exc:
            self._report(source, pr.head_sha, "error", f"cannot plan: {exc}"[:250])
            return None
        status, description = describe(plan)
        self._report(source, head, status, description)
        self._comment(source, pr, plan)
        return plan

    def _report(self, source: SourceConfig, commit: str, status: str, description: str) -> None:
        with self.store.atomic() as conn:
            outbox.enqueue_status(
                conn, source.name, commit, PLAN_CONTEXT, status, description, self.settings.http.public_url
            )
        if callable(self.wake):
            self.wake()

    def _comment(self, source: SourceConfig, pr: PullRequest, plan: Plan) -> None:
        if source.status is None or not source.status.pr_comments:
            return
        try:
            provider = provider_for(source)
        except ProviderUnavailable as exc:
            log.warning("%s: pull request #%d: the plan comment was not posted: %s", source.name, pr.number, exc)
            return
        try:
            post_plan_comment(provider, pr.number, plan, source.name)
        except HostError as exc:  # a side channel: logged, never raised
            log.warning("%s: pull request #%d: the plan comment was not posted: %s", source.name, pr.number, exc)
        finally:
            provider.close()  # its own client: one per pull request, its connections must not outlive it
