"""`inventory-bronze`: one command, one sub-command per job. Each sub-command lives in its own module of
this package with a `register(subparsers)` function; the table below is the only place that lists them."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

from inventory_bronze import __version__

# module name under inventory_bronze.cli, in the order `--help` shows them; those in LOCAL_COMMANDS need
# the checkout's local tools (inventory_devkit, localdlt), which the deployed wheel does not hold
COMMANDS = (
    "demo",
    "run",
    "dlt",
    "db",
    "seed",
    "changes",
    "capture",
    "secrets",
    "pii",
    "reconcile",
    "audit",
    "report",
    "status",
    "maintain",
    "bench",
)
LOCAL_COMMANDS = frozenset({"demo", "run", "dlt", "db", "seed", "changes", "bench"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inventory-bronze",
        description="Bronze layer of the inventory platform: PostgreSQL DE.tests -> Delta bz_* tables, "
        "with a local runtime for Databricks declarative pipelines (the dlt API).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    local_tools = importlib.util.find_spec("inventory_devkit") is not None
    for name in COMMANDS:
        if name in LOCAL_COMMANDS and not local_tools:
            continue  # a deployed installation: the jobs' commands only
        importlib.import_module(f"inventory_bronze.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if not _names_its_cause(err):
            raise
        # the product's own errors name what is at fault and what to do: one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 1


def _names_its_cause(err: Exception) -> bool:
    """An error of the product, its source package or the local runtime (imported only now: loading the
    runtime loads Spark's Python side)."""
    from inventory_bronze.errors import InventoryBronzeError
    from inventory_bronze.source.errors import SourceError

    known: tuple[type[Exception], ...] = (InventoryBronzeError, SourceError)
    try:
        from localdlt import PipelineError
    except ModuleNotFoundError:  # a deployed installation: no local runtime
        return isinstance(err, known)
    return isinstance(err, (*known, PipelineError))


if __name__ == "__main__":
    sys.exit(main())
