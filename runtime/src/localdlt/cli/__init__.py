"""`localdlt`: run, validate and set up Databricks declarative pipelines on one machine.

Each sub-command lives in a module of this package with `register(subparsers)`. A project that has a
command of its own can offer `localdlt run` in it with `add_run_command` (the same options and handler).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from localdlt.cli import run, setup, validate

COMMANDS = (run, validate, setup)


def build_parser(prog: str = "localdlt") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run Databricks declarative pipelines (import dlt / from pyspark import pipelines as dp) "
        "locally on real Spark and Delta Lake.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def add_run_command(
    sub: argparse._SubParsersAction, before_spark: Callable[[], None] | None = None
) -> argparse.ArgumentParser:
    """Add `run` (as `localdlt run`) to another command's sub-commands; `before_spark` runs just before the
    Spark session starts (e.g. to name the jar folder it loads). Its handler returns the exit status."""
    return run.register(sub, before_spark)


def main(argv: Sequence[str] | None = None, prog: str = "localdlt") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
