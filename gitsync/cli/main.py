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

    validate = commands.add_parser("validate", help="validate flow files or folders")
    validate.add_argument("paths", nargs="*", default=["."], metavar="PATH")
    validate.add_argument("--format", choices=sorted(RENDERERS), default="text")
    validate.add_argument("--namespace-prefix", help="the namespace prefix the flows must stay inside")
    validate.add_argument("--watch", action="store_true", help="validate again on every change")
    validate.set_defaults(handler=run_validate)

    schema = commands.add_parser("schema", help="print the JSON Schema of a flow file")
    schema.set_defaults(handler=run_schema)

    from gitsync.cli.plan import add_plan_arguments, run_plan

    plan = commands.add_parser("plan", help="what merging HEAD onto BASE would apply")
    add_plan_arguments(plan)
    plan.set_defaults(handler=lambda args: run_plan(args, registry=load_registry()))

    _add_state_commands(commands)
    return parser


def _add_state_commands(commands: argparse._SubParsersAction) -> None:
    from gitsync.cli import state_commands

    sync = commands.add_parser("sync", help="fetch each source once and apply its head; prints the plan applied")
    state_commands.add_state_arguments(sync)
    state_commands.add_source_arguments(sync)
    sync.add_argument("--format", choices=["text", "json"], default="text")
    sync.set_defaults(handler=state_commands.run_sync)

    daemon = commands.add_parser("daemon", help="the service: sync, schedule, run, report, HTTP API")
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
        "flows": ("the active flows", state_commands.run_flows),
        "history": ("the revisions of one flow", state_commands.run_history),
        "syncs": ("the syncs, newest first", state_commands.run_syncs),
        "triggers": ("the registered triggers and their next fire", state_commands.run_triggers),
    }
    for name, (help_text, handler) in readers.items():
        reader = commands.add_parser(name, help=help_text)
        if name == "history":
            reader.add_argument("uid", metavar="NS.ID")
        if name == "syncs":
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
