"""The command line's arguments, argparse only: every command's options, and its handler by name.

A handler is named (`Handler("gitsync.cli.executions", "run_flow")`), not imported: its module, and what that
module needs (the engine, dulwich, the HTTP server…), is imported when the command runs. So `gitsync --help`
and `gitsync COMMAND --help` import argparse and little else (tests/test_startup.py holds that).
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from runner.states import State

VALIDATE_FORMATS = ("github", "json", "text")
"""`gitsync validate --format`: the keys of `gitsync.flows.report.RENDERERS`."""
PLAN_FORMATS = ("json", "markdown", "text")
"""`gitsync plan --format`: the keys of `gitsync.sync.render.RENDERERS`."""


class Handler:
    """A command's handler, imported from its module when the command runs."""

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def __call__(self, args: argparse.Namespace) -> Any:
        return getattr(importlib.import_module(self.module), self.name)(args)

    def __repr__(self) -> str:
        return f"Handler({self.module}:{self.name})"


def add_state_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="gitsync.yaml with the sources (see the README)")
    parser.add_argument("--db", help="SQLite state file (default: gitsync.db)")
    parser.add_argument("--data-dir", help="git caches and execution files (default: .gitsync)")


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", help="repository: a local path, file://, http(s)://, git:// or ssh:// URL")
    parser.add_argument("--branch", help="branch to follow (default: the remote's default branch)")
    parser.add_argument("--path", default=None, help="folder of the flows in the repository (default: root)")
    parser.add_argument("--namespace-prefix", help="namespaces the source owns (default: every namespace)")
    parser.add_argument("--name", help="source name (default: derived from --repo)")
    parser.add_argument("--token-env", help="environment variable holding the HTTPS token")
    parser.add_argument("--allow-empty", action="store_true", help="allow a commit that removes every flow")


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default=".", help="path of a local git repository (default: .)")
    parser.add_argument("--base", required=True, help="the revision merged into (sha, branch, tag, HEAD~1 …)")
    parser.add_argument("--head", required=True, help="the revision to merge")
    parser.add_argument("--path", default="", help="folder of the flows inside the repository (default: root)")
    parser.add_argument("--namespace-prefix", default=None, help="namespace prefix the flows must stay inside")
    parser.add_argument("--format", choices=PLAN_FORMATS, default="text")


def add_sync_commands(commands: argparse._SubParsersAction) -> None:
    state = "gitsync.cli.state_commands"
    sync = commands.add_parser(
        "sync",
        help="fetch each source once and apply its head; prints the plan applied",
        description="Fetch each source (--repo, or the sources of --config) once and apply the flows of its "
        "branch head to the state database, whole or not at all; prints the plan applied. "
        "Exit 0 when applied or nothing to do, 1 when the commit is invalid or refused, 3 when the fetch failed.",
    )
    add_state_arguments(sync)
    add_source_arguments(sync)
    sync.add_argument("--format", choices=["text", "json"], default="text")
    sync.set_defaults(handler=Handler(state, "run_sync"))

    daemon = commands.add_parser(
        "daemon",
        help="the service: sync, schedule, run, report, HTTP API",
        description="Run the service until SIGINT or SIGTERM: sync the sources (on a local commit, a webhook, "
        "the poll timer or the API), fire the triggers, run the executions, post commit statuses, and answer "
        "the HTTP API.",
    )
    add_state_arguments(daemon)
    add_source_arguments(daemon)
    daemon.add_argument("--listen", help="HTTP address (default 127.0.0.1:8080)")
    daemon.add_argument("--poll", help="poll interval of the --repo source (default 60s)")
    daemon.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    daemon.set_defaults(handler=Handler(state, "run_daemon"))


def add_read_commands(commands: argparse._SubParsersAction) -> None:
    state = "gitsync.cli.state_commands"
    readers = {
        "flows": (
            "the active flows",
            "List the active flows of every source: uid (NAMESPACE.ID), revision, commit, file, disabled.",
            "run_flows",
        ),
        "history": (
            "the revisions of one flow",
            "List every revision of one flow, oldest first: the commit, author and message that applied it, "
            "and whether it removed the flow. An unknown flow is a usage error (exit 2).",
            "run_history",
        ),
        "syncs": (
            "the syncs, newest first",
            "List the syncs of every source, newest first, with their outcome and first error; "
            "`gitsync syncs ID` shows one sync with every error and warning in full.",
            "run_syncs",
        ),
        "triggers": (
            "the registered triggers and their next fire",
            "List the registered triggers (schedules, flow and webhook triggers) with their cron, timezone, "
            "next fire time and whether they are paused or disabled.",
            "run_triggers",
        ),
    }
    for name, (help_text, description, handler) in readers.items():
        reader = commands.add_parser(name, help=help_text, description=description)
        if name == "history":
            reader.add_argument("uid", metavar="NS.ID")
        if name == "syncs":
            reader.add_argument("id", nargs="?", type=int, metavar="ID", help="show this sync, every error in full")
            reader.add_argument("--limit", type=int, default=100)
        add_state_arguments(reader)
        reader.add_argument("--format", choices=["text", "json"], default="text")
        reader.set_defaults(handler=Handler(state, handler), repo=None)


def add_run_commands(commands: argparse._SubParsersAction) -> None:
    module = "gitsync.cli.executions"
    run = commands.add_parser(
        "run",
        help="run one flow now, with live progress",
        description="Run one synced flow (NS.ID) now, or a flow file that is not synced yet (--file), printing "
        "each task as it ends and the outputs at the end. Exit 0 on SUCCESS or WARNING, 1 otherwise.",
    )
    run.add_argument("uid", nargs="?", metavar="NS.ID", help="a synced flow (see `gitsync flows`)")
    run.add_argument("--file", help="run a flow file that is not synced yet (for authors)")
    run.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="K=V",
        help="an input value (repeatable); K=@PATH uploads a file for a FILE input",
    )
    run.add_argument("--quiet", action="store_true", help="no progress lines, only the result (and a pause)")
    add_state_arguments(run)
    run.set_defaults(handler=Handler(module, "run_flow"), repo=None)

    replay = commands.add_parser(
        "replay",
        help="run an ended execution again from one of its tasks, with live progress",
        description="Replay an ended execution from one of its tasks: a new execution of the revision the original "
        "ran (not the flow's current one), with its inputs (--input gives some again) and labels, where what ended "
        "done before that task started is carried over with its outputs and not run again, and the task and "
        "everything after it run. Progress and exit codes as `gitsync run`; exit 1 when the replay is refused "
        "(the execution has not ended, the task did not run in it, its flow is no longer synced).",
    )
    replay.add_argument("execution", help="the ended execution (see `gitsync executions`)")
    replay.add_argument("--task", metavar="TASK_ID", help="the task to run again from (its first run)")
    replay.add_argument(
        "--task-run", metavar="TASK_RUN_ID", help="the task run to run again from (one value of a ForEach, …)"
    )
    replay.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="K=V",
        help="an input given again (repeatable; the others keep the original's values); K=@PATH uploads a file",
    )
    replay.add_argument("--quiet", action="store_true", help="no progress lines, only the result (and a pause)")
    add_state_arguments(replay)
    replay.set_defaults(handler=Handler(module, "replay"), repo=None)

    listing = commands.add_parser(
        "executions",
        help="the executions, newest first",
        description="List the executions, newest first: id, flow, revision, state, duration, trigger and when "
        "each was created; --flow and --state narrow the list.",
    )
    listing.add_argument("--flow", help="only this flow (NS.ID)")
    listing.add_argument("--state", choices=[s.value for s in State], metavar="STATE", help="only this state")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--format", choices=["text", "json"], default="text")
    add_state_arguments(listing)
    listing.set_defaults(handler=Handler(module, "list_executions"), repo=None)

    logs = commands.add_parser(
        "logs",
        help="the logs of one execution",
        description="Print the log lines of one execution (see `gitsync executions` for the ids); --follow "
        "keeps printing until the execution ends.",
    )
    logs.add_argument("execution")
    logs.add_argument("--follow", action="store_true", help="keep printing until the execution ends")
    add_state_arguments(logs)
    logs.set_defaults(handler=Handler(module, "show_logs"), repo=None)

    actions = (
        (
            "kill",
            "kill a running execution",
            "Kill a running execution (its running tasks are stopped) or cancel one that has not started yet.",
        ),
        (
            "resume",
            "resume a paused execution",
            "Resume an execution paused by a Pause task; --input gives the values the pause asks for.",
        ),
    )
    for name, help_text, description in actions:
        act = commands.add_parser(name, help=help_text, description=description)
        act.add_argument("execution")
        if name == "resume":
            act.add_argument("--input", action="append", default=[], metavar="K=V")
        add_state_arguments(act)
        act.set_defaults(handler=Handler(module, name), repo=None)


def add_worker_commands(commands: argparse._SubParsersAction) -> None:
    module = "gitsync.cli.workers"
    worker = commands.add_parser(
        "worker",
        help="a Celery worker: runs the tasks the daemon sends (executor: celery)",
        description="Run a Celery worker until SIGINT or SIGTERM: it takes the runnable tasks of the queues given "
        "(a task's workerGroup.key; default: celery.default_queue) from the broker in $GITSYNC_BROKER_URL "
        "(celery.broker_url_env) and runs them with the installed plugins. It never opens the state database.",
    )
    add_state_arguments(worker)
    worker.add_argument("--queues", help="comma-separated queues to consume (default: celery.default_queue)")
    worker.add_argument("--concurrency", type=int, default=10, help="tasks run at once (default 10)")
    worker.add_argument("--hostname", help="the worker's name (default gitsync-PID@HOST)")
    worker.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    worker.set_defaults(handler=Handler(module, "run_worker"), repo=None)
    workers = commands.add_parser(
        "workers",
        help="the Celery workers seen, queue depths and task runs in flight",
        description="List the Celery workers whose heartbeat is live (their queues and running tasks), the "
        "messages waiting in each queue, and the task runs the control plane has in flight.",
    )
    add_state_arguments(workers)
    workers.add_argument("--format", choices=["text", "json"], default="text")
    workers.set_defaults(handler=Handler(module, "list_workers"), repo=None)


def add_statuses_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "statuses",
        help="commit statuses: posted, pending and given up, and why",
        description="List the commit statuses gitsync posts to the git host (newest first): the ones sent, the "
        "ones waiting or being retried, and the ones given up, with the host's last error.",
    )
    add_state_arguments(parser)
    parser.add_argument("--commit", help="only this commit (a full SHA or a prefix)")
    parser.add_argument("--limit", type=int, default=200, help="newest N rows (default 200)")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.set_defaults(handler=Handler("gitsync.cli.statuses", "run_statuses"), repo=None)
    return parser


def add_review_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "review",
        help="in CI: validate and plan a pull request, and post the result to it",
        description="Validate the pull request's head and plan it against its base (as `gitsync plan`), show the "
        "problems on the changed lines (GitHub workflow commands; GitLab's code-quality report), and post a "
        "gitsync/plan commit status and one plan comment, edited in place on every push (the daemon's comment, "
        "when one runs). What is not given comes from the CI's environment: GitHub Actions, GitLab CI, "
        "Gitea/Forgejo Actions. A shallow clone's missing commits and history are fetched. "
        "Exit 0 when head is valid, 1 when it is not, 2 for a usage problem (no token, not a pull request) or when "
        "the host refused the review.",
    )
    parser.add_argument("--path", default="", help="folder of the flows in the repository (default: root)")
    parser.add_argument("--namespace-prefix", default=None, help="namespace prefix the flows must stay inside")
    parser.add_argument("--base", help="the revision merged into (default: the pull request's base, from the CI)")
    parser.add_argument("--head", help="the revision to merge (default: the pull request's head, from the CI)")
    parser.add_argument("--repo", default=".", help="the CI's clone of the repository (default: .)")
    ci = parser.add_argument_group("where to post (default: from the CI's environment)")
    ci.add_argument("--host", choices=["github", "gitea", "gitlab"], help="the git host (gitea for Forgejo too)")
    ci.add_argument("--api-url", help="the host's API (GITHUB_API_URL, CI_API_V4_URL)")
    ci.add_argument("--repository", help="owner/name, or a GitLab project path or id")
    ci.add_argument("--pull-request", type=int, metavar="N", help="the pull (or merge) request's number")
    ci.add_argument("--token-env", metavar="NAME", help="the variable holding the token (default: the CI's own)")
    ci.add_argument("--remote", metavar="URL", help="the git URL to fetch what a shallow clone lacks")
    ci.add_argument(
        "--source",
        metavar="NAME",
        help="the daemon's name of this source, so both edit one comment (default: the repository's name)",
    )
    ci.add_argument(
        "--code-quality",
        metavar="FILE",
        help="write a GitLab code-quality report (GitLab: gl-code-quality-report.json)",
    )
    parser.add_argument("--data-dir", help="where to fetch into (default: a temporary folder)")
    parser.set_defaults(handler=Handler("gitsync.cli.review", "run_review"))
    return parser
