"""`inventory-bronze seed`: fill DE.tests with deterministic generated data (optionally dirty)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from inventory_bronze.cli.options import dirty_rate, scale


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "seed",
        help="fill DE.tests with generated data (deterministic, COPY-loaded)",
        description="Replace the content of the ten tables of DE.tests with generated data. At --scale 1 "
        "the seed's volumes: products 10k, suppliers 1k, warehouses 50, inventory 100k, orders 500k, "
        "order_details 2M, shipments 400k, returns 50k, stock_levels 100k, customers 100k. The same "
        "--scale, --seed and --dirty-rate always give the same data. Starts the local server when needed.",
        epilog="--dirty-rate R breaks about a fraction R of the rows of each dirty-data rule: missing "
        "names, malformed e-mails, negative quantities and prices, dates in the future, orphaned "
        "references (foreign keys are re-added NOT VALID, so they hold for new writes only). Each kind "
        "is counted in the output.",
    )
    parser.add_argument(
        "--scale", type=scale, default=1.0, help="volume factor (default 1: the seed's volumes)"
    )
    parser.add_argument(
        "--dirty-rate", type=dirty_rate, default=0.0, help="fraction of rows per dirty rule (default 0)"
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="folder of a local server made by `db start` (default: var/postgres, started if needed)",
    )
    parser.add_argument(
        "--validate-foreign-keys",
        action="store_true",
        help="validate the foreign keys after a clean load (slower; ignored with --dirty-rate)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON at the end")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from inventory_bronze.source.errors import SourceError
    from inventory_devkit.postgres.load import seed_database
    from inventory_devkit.postgres.server import ensure_server, holds_server

    if args.data_dir is not None and not holds_server(args.data_dir):
        # a mistyped folder would otherwise get a new, empty cluster of its own, started and seeded
        print(
            f"seed: --data-dir {args.data_dir} holds no local server: give the folder of a running one, or "
            f"create it first with `inventory-bronze db start --data-dir {args.data_dir}`.",
            file=sys.stderr,
        )
        return 1
    try:
        info = ensure_server(args.data_dir)
        report = seed_database(
            info,
            scale=args.scale,
            seed=args.seed,
            dirty_rate=args.dirty_rate,
            validate_foreign_keys=args.validate_foreign_keys,
        )
    except SourceError as err:
        print(f"seed: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    return 0
