"""The `gitsync` command line (DESIGN.md: exit 0 valid, 1 invalid, 2 usage)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from gitsync import __version__
from gitsync.errors import GitSyncError
from gitsync.flows.loader import load_paths
from gitsync.flows.report import RENDERERS
from gitsync.flows.schema import flow_schema
from runner.registry import Registry, RegistryError


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # a closed pipe is found here, not by the interpreter's own flush at exit
        return code
    except RegistryError as exc:
        print(f"gitsync: plugin error: {exc}", file=sys.stderr)
        return 2
    except GitSyncError as exc:
        print(f"gitsync {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `gitsync flows | head`: the reader is gone; stop quietly, as a Unix tool does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail again
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the closed pipe


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gitsync", description="GitOps for Kestra-format workflows.")
    parser.add_argument("--version", action="version", version=f"gitsync {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="validate flow files or folders",
        description="Check flow files (or every .yaml/.yml file under a folder) against the flow model and the "
        "installed plugins. Every problem is reported with its file, line and column. "
        "Exit 0 when all are valid, 1 when one is not, 2 for a usage error.",
    )
    validate.add_argument("paths", nargs="*", default=["."], metavar="PATH")
    validate.add_argument("--format", choices=sorted(RENDERERS), default="text")
    validate.add_argument("--namespace-prefix", help="the namespace prefix the flows must stay inside")
    validate.add_argument("--watch", action="store_true", help="validate again on every change")
    validate.set_defaults(handler=run_validate)

    schema = commands.add_parser(
        "schema",
        help="print the JSON Schema of a flow file",
        description="Print the JSON Schema of a flow file, built from the installed plugins, for editors "
        "(e.g. the YAML language server) to complete and check flows as you type.",
    )
    schema.set_defaults(handler=run_schema)

    from gitsync.cli.plan import add_plan_arguments, run_plan

    plan = commands.add_parser(
        "plan",
        help="what merging HEAD onto BASE would apply",
        description="Show what merging --head onto --base would apply: the flows and triggers added, changed, "
        "removed or moved, with the task and property changes and the next fire times. Nothing is applied. "
        "Exit 0 when head is valid, 1 when it is not, 2 for a bad repository or revision.",
    )
    add_plan_arguments(plan)
    plan.set_defaults(handler=lambda args: run_plan(args, registry=load_registry()))

    _add_state_commands(commands)
    return parser


def _add_state_commands(commands: argparse._SubParsersAction) -> None:
    from gitsync.cli import state_commands

    sync = commands.add_parser(
        "sync",
        help="fetch each source once and apply its head; prints the plan applied",
        description="Fetch each source (--repo, or the sources of --config) once and apply the flows of its "
        "branch head to the state database, whole or not at all; prints the plan applied. "
        "Exit 0 when applied or nothing to do, 1 when the commit is invalid or refused, 3 when the fetch failed.",
    )
    state_commands.add_state_arguments(sync)
    state_commands.add_source_arguments(sync)
    sync.add_argument("--format", choices=["text", "json"], default="text")
    sync.set_defaults(handler=state_commands.run_sync)

    daemon = commands.add_parser(
        "daemon",
        help="the service: sync, schedule, run, report, HTTP API",
        description="Run the service until SIGINT or SIGTERM: sync the sources (on a local commit, a webhook, "
        "the poll timer or the API), fire the triggers, run the executions, post commit statuses, and answer "
        "the HTTP API.",
    )
    state_commands.add_state_arguments(daemon)
    state_commands.add_source_arguments(daemon)
    daemon.add_argument("--listen", help="HTTP address (default 127.0.0.1:8080)")
    daemon.add_argument("--poll", help="poll interval of the --repo source (default 60s)")
    daemon.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    daemon.set_defaults(handler=state_commands.run_daemon)

    from gitsync.cli.executions import add_run_commands
    from gitsync.cli.statuses import add_statuses_command

    add_run_commands(commands)
    add_statuses_command(commands)

    readers = {
        "flows": (
            "the active flows",
            "List the active flows of every source: uid (NAMESPACE.ID), revision, commit, file, disabled.",
            state_commands.run_flows,
        ),
        "history": (
            "the revisions of one flow",
            "List every revision of one flow, oldest first: the commit, author and message that applied it, "
            "and whether it removed the flow. An unknown flow is a usage error (exit 2).",
            state_commands.run_history,
        ),
        "syncs": (
            "the syncs, newest first",
            "List the syncs of every source, newest first, with their outcome and first error; "
            "`gitsync syncs ID` shows one sync with every error and warning in full.",
            state_commands.run_syncs,
        ),
        "triggers": (
            "the registered triggers and their next fire",
            "List the registered triggers (schedules, flow and webhook triggers) with their cron, timezone, "
            "next fire time and whether they are paused or disabled.",
            state_commands.run_triggers,
        ),
    }
    for name, (help_text, description, handler) in readers.items():
        reader = commands.add_parser(name, help=help_text, description=description)
        if name == "history":
            reader.add_argument("uid", metavar="NS.ID")
        if name == "syncs":
            reader.add_argument("id", nargs="?", type=int, metavar="ID", help="show this sync, every error in full")
            reader.add_argument("--limit", type=int, default=100)
        state_commands.add_state_arguments(reader)
        reader.add_argument("--format", choices=["text", "json"], default="text")
        reader.set_defaults(handler=handler, repo=None)


def load_registry() -> Registry:
    """The installed plugins, loaded when a command needs them (`gitsync --help` and the read commands do not)."""
    from gitsync.compose import load_registry as load

    return load()


def run_validate(args: argparse.Namespace) -> int:
    if args.watch:
        from gitsync.flows.watch import watch_and_validate

        return watch_and_validate(args.paths, lambda: _validate_once(args))
    return _validate_once(args)


def _validate_once(args: argparse.Namespace) -> int:
    result = load_paths(args.paths, load_registry(), args.namespace_prefix)
    print(RENDERERS[args.format](result), flush=True)
    return 0 if result.ok else 1


def run_schema(args: argparse.Namespace) -> int:
    print(json.dumps(flow_schema(load_registry()), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
