"""The `gitsync` command line (DESIGN.md: exit 0 valid, 1 invalid, 2 usage)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from gitsync import __version__
from gitsync.cli.options import (
    VALIDATE_FORMATS,
    add_plan_arguments,
    add_read_commands,
    add_review_command,
    add_run_commands,
    add_statuses_command,
    add_sync_commands,
    add_worker_commands,
)
from gitsync.errors import GitSyncError
from runner.registry import Registry, RegistryError

# Only argparse and the options are imported here: each command imports what it needs when it runs
# (gitsync.cli.options), so `gitsync --help` starts as fast as Python does.


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # the parser is not kept while the command runs (a daemon runs for long)
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
    validate.add_argument("--format", choices=VALIDATE_FORMATS, default="text")
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

    plan = commands.add_parser(
        "plan",
        help="what merging HEAD onto BASE would apply",
        description="Show what merging --head onto --base would apply: the flows and triggers added, changed, "
        "removed or moved, with the task and property changes and the next fire times. Nothing is applied. "
        "Exit 0 when head is valid, 1 when it is not, 2 for a bad repository or revision.",
    )
    add_plan_arguments(plan)
    plan.set_defaults(handler=run_plan)
    add_review_command(commands)

    add_sync_commands(commands)
    add_run_commands(commands)
    add_statuses_command(commands)
    add_worker_commands(commands)
    add_read_commands(commands)
    return parser


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
    from gitsync.flows.loader import load_paths
    from gitsync.flows.report import RENDERERS

    result = load_paths(args.paths, load_registry(), args.namespace_prefix)
    print(RENDERERS[args.format](result), flush=True)
    return 0 if result.ok else 1


def run_schema(args: argparse.Namespace) -> int:
    import json

    from gitsync.flows.schema import flow_schema

    print(json.dumps(flow_schema(load_registry()), indent=2))
    return 0


def run_plan(args: argparse.Namespace) -> int:
    from gitsync.cli.plan import run_plan as plan

    return plan(args, registry=load_registry())


if __name__ == "__main__":
    sys.exit(main())
