"""The `gitsync` command line (DESIGN.md: exit 0 valid, 1 invalid, 2 usage)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from gitsync.loader import load_paths
from gitsync.report import RENDERERS
from gitsync.schema import flow_schema
from runner.registry import RegistryError, default_registry


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except RegistryError as exc:
        print(f"gitsync: plugin error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gitsync", description="GitOps for Kestra-format workflows.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="validate flow files or folders")
    validate.add_argument("paths", nargs="*", default=["."], metavar="PATH")
    validate.add_argument("--format", choices=sorted(RENDERERS), default="text")
    validate.add_argument("--namespace-prefix", help="the namespace prefix the flows must stay inside")
    validate.add_argument("--watch", action="store_true", help="validate again on every change")
    validate.set_defaults(handler=run_validate)

    schema = commands.add_parser("schema", help="print the JSON Schema of a flow file")
    schema.set_defaults(handler=run_schema)

    from gitsync.plan_cmd import add_plan_arguments, run_plan

    plan = commands.add_parser("plan", help="what merging HEAD onto BASE would apply")
    add_plan_arguments(plan)
    plan.set_defaults(handler=run_plan)
    return parser


def run_validate(args: argparse.Namespace) -> int:
    if args.watch:
        from gitsync.watch import watch_and_validate

        return watch_and_validate(args.paths, lambda: _validate_once(args))
    return _validate_once(args)


def _validate_once(args: argparse.Namespace) -> int:
    result = load_paths(args.paths, default_registry(), args.namespace_prefix)
    print(RENDERERS[args.format](result), flush=True)
    return 0 if result.ok else 1


def run_schema(args: argparse.Namespace) -> int:
    print(json.dumps(flow_schema(default_registry()), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
