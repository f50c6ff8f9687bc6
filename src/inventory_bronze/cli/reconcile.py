"""`inventory-bronze reconcile`: source keys against bronze and quarantine, per table, recorded in
bz_reconciliation for the audit; locally after `run`, and on Databricks as a task of the hourly job."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from inventory_bronze.cli import options
from inventory_bronze.cli.options import non_negative_float

DEFAULT_STORAGE = options.local_storage()


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "reconcile",
        help="compare the source's keys with bronze + quarantine and record the result",
        description="Per table: every source key must be in bronze or held back in quarantine, no bronze key "
        "the source no longer has, no key twice. The result goes to bz_reconciliation, tagged with the "
        "latest update of the pipeline holding the table, so the audit (`audit`) carries it. Exit 1 when a "
        "table does not match. Locally: the tables under --storage. On Databricks (the hourly job's task): "
        "--catalog/--schema/--event-log, the source read with the secrets of --secret-scope.",
    )
    parser.add_argument("--storage", type=Path, default=DEFAULT_STORAGE, help=f"default {DEFAULT_STORAGE}")
    parser.add_argument("--catalog", help="Unity Catalog catalog of the bronze tables (with --schema)")
    parser.add_argument("--schema", help="schema of the bronze tables and the event logs")
    parser.add_argument(
        "--event-log", action="append", metavar="NAME", help="published event log table (repeatable)"
    )
    parser.add_argument("--config", metavar="PATH", help="the tables configuration (default conf/tables.yml)")
    parser.add_argument(
        "--secret-scope", metavar="SCOPE", help="Databricks secret scope of the source secrets"
    )
    parser.add_argument(
        "--secret-names",
        nargs=3,
        metavar=("URL", "USER", "PASSWORD"),
        help="names of the source's connection string, user and password secrets (default the seed's: "
        "KConnectionString KUser KPassword)",
    )
    parser.add_argument(
        "--source-schema", help="the source's PostgreSQL schema (default the configuration's)"
    )
    parser.add_argument(
        "--settle-seconds",
        type=non_negative_float,
        default=0.0,
        metavar="N",
        help="compare a differing table again after N s and report only what differed both times "
        "(changes in flight in a continuous pipeline; default 0: no second look)",
    )
    parser.set_defaults(handler=_reconcile)


def _reconcile(args: argparse.Namespace) -> int:
    from inventory_bronze import reconcile
    from inventory_bronze.audit.store import (
        Location,
        catalog_events,
        default_targets,
        local_events,
        record_reconciliation,
    )
    from inventory_bronze.errors import ConfigError
    from inventory_bronze.secrets import ENV_SCOPE, SecretNames, source_connection
    from inventory_bronze.source.capture_connection import open_connection
    from inventory_bronze.spark_session import get_spark

    on_catalog = bool(args.catalog or args.schema or args.event_log)
    if on_catalog and not (args.catalog and args.schema and args.event_log):
        raise ConfigError("--catalog, --schema and --event-log go together")
    if not on_catalog and not Path(args.storage).is_dir():
        raise ConfigError(f"No pipeline storage at {args.storage}: run `inventory-bronze run` first.")
    if args.secret_scope:
        os.environ[ENV_SCOPE] = args.secret_scope
    spark = get_spark("inventory-bronze-reconcile")
    config = options.bronze_config(args.config)
    names = SecretNames(*args.secret_names) if args.secret_names else None
    if on_catalog:
        location = Location(catalog=args.catalog, schema=args.schema)
        read = lambda name: location.read(spark, name)  # noqa: E731 - the published tables
        events = catalog_events(spark, location, args.event_log)
    else:
        location = Location.local(args.storage)
        read = reconcile.local_tables(spark, args.storage)
        events = local_events(spark, args.storage)
    settle = (lambda: time.sleep(args.settle_seconds)) if args.settle_seconds else None
    with open_connection(source_connection(names)) as conn:
        rows = reconcile.reconcile_tables(
            spark,
            read,
            conn,
            config,
            settle=settle,
            source_schema=args.source_schema or config.source.schema_,
        )
    print(reconcile.format_table(rows))
    recorded = record_reconciliation(spark, location, events, rows, default_targets(config))
    print(f"recorded {recorded} table(s) in {location.ref('bz_reconciliation')}")
    mismatched = [r.table for r in rows if not r.ok]
    if mismatched:
        print(f"reconcile: MISMATCH in {', '.join(mismatched)}", file=sys.stderr)
        return 1
    return 0
