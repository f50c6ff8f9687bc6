"""`inventory-bronze changes`: run the change workload (inserts, updates, deletes, optional DDL)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _positive(kind: type) -> object:
    def parse(text: str) -> object:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
        return value

    return parse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "changes",
        help="run the change workload against DE.tests (transactions of inserts, updates, deletes)",
        description="Run realistic multi-statement transactions against a seeded DE.tests: new orders "
        "with their lines, stock movements (inventory and stock_levels), shipments and deliveries, "
        "returns, cancellations and deletes of cancelled orders with their lines, price and customer "
        "updates (including updates that leave a large TOASTed column unchanged). Counts rows changed "
        "per table and operation.",
        epilog="A change is one inserted, updated or deleted row. --add-column and --truncate run once, "
        "in the middle of the run. Seed first: `inventory-bronze seed --scale 0.01`.",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--count",
        type=_positive(int),
        metavar="N",
        help="run until at least N rows changed, as fast as possible",
    )
    mode.add_argument(
        "--rate",
        type=_positive(float),
        metavar="R",
        help="pace to R row changes per second (needs --duration)",
    )
    parser.add_argument(
        "--duration", type=_positive(float), metavar="S", help="seconds to run in --rate mode"
    )
    parser.add_argument("--seed", type=int, help="random seed (default: different every run)")
    parser.add_argument(
        "--truncate",
        action="append",
        default=[],
        metavar="TABLE",
        help="TRUNCATE this table mid-run (repeatable; all in one statement, e.g. orders with order_details)",
    )
    parser.add_argument(
        "--add-column",
        action="append",
        default=[],
        metavar="TABLE.COL[:TYPE]",
        help="ALTER TABLE ... ADD COLUMN mid-run (type text by default) and fill it on a few rows",
    )
    parser.add_argument("--data-dir", type=Path, help="local server folder (default: var/postgres)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON at the end")
    parser.set_defaults(handler=lambda args: _run(parser, args))


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from inventory_bronze.source.errors import SourceError
    from inventory_devkit.postgres.server import server_info
    from inventory_devkit.postgres.workload import run_changes

    if args.rate is not None and args.duration is None:
        parser.error("--rate needs --duration SECONDS")
    if args.count is not None and args.duration is not None:
        parser.error("--duration goes with --rate, not --count")
    try:
        report = run_changes(
            server_info(args.data_dir),
            count=args.count,
            rate=args.rate,
            duration=args.duration,
            seed=args.seed,
            truncate=args.truncate,
            add_columns=args.add_column,
        )
    except SourceError as err:
        print(f"changes: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    return 0
