"""`inventory-bronze maintain`: OPTIMIZE and VACUUM every bronze table."""

from __future__ import annotations

import argparse
from pathlib import Path

from inventory_bronze.cli import options


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "maintain",
        help="OPTIMIZE and VACUUM (retain 168 h) every bronze table",
        description="OPTIMIZE (liquid clustering where clustered) and VACUUM every bz_* table: the local "
        "pipeline storage by default, or catalog.schema on Databricks (--catalog/--schema).",
    )
    parser.add_argument("--storage", default=options.local_storage(), type=Path, help="local storage")
    parser.add_argument("--catalog", help="Unity Catalog catalog (with --schema): maintain its bz_* tables")
    parser.add_argument("--schema", help="schema of the bronze tables (with --catalog)")
    parser.add_argument("--vacuum-retain-hours", type=int, default=168, help="VACUUM retention (default 168)")
    parser.set_defaults(handler=_maintain)


def _maintain(args: argparse.Namespace) -> int:
    from pathlib import Path

    from inventory_bronze.maintenance import catalog_tables, local_tables, maintain
    from inventory_bronze.spark_session import get_spark

    if bool(args.catalog) != bool(args.schema):
        raise SystemExit("--catalog and --schema go together")
    spark = get_spark("inventory-bronze-maintain")
    tables = (
        catalog_tables(spark, args.catalog, args.schema) if args.catalog else local_tables(Path(args.storage))
    )
    if not tables:
        print("no bronze tables found")
        return 1
    print(f"maintaining {len(tables)} table(s)")
    maintain(spark, tables, args.vacuum_retain_hours)
    return 0
