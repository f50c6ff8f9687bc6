"""`inventory-bronze audit`: derive the audit tables (bz_audit_log, bz_audit_expectations) from the
pipelines' event logs, incrementally (finished updates the audit lacks; rerunning adds nothing)."""

from __future__ import annotations

import argparse
from pathlib import Path

from inventory_bronze.cli import options

DEFAULT_STORAGE = options.local_storage()


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "audit",
        help="derive the audit tables from the pipelines' event logs",
        description="Derive bz_audit_log (one row per bronze table per update) and "
        "bz_audit_expectations (one row per expectation per table per update) from the event logs. "
        "A running update (continuous) gets its figures so far, replaced by the final ones once it ended; "
        "rerunning adds nothing. "
        "Locally: every STORAGE/<pipeline>/system/events, into STORAGE/audit/<table>. On Databricks "
        "(--catalog/--schema/--event-log): the published event log tables, into catalog.schema.<table>.",
    )
    parser.add_argument("--storage", type=Path, default=DEFAULT_STORAGE, help=f"default {DEFAULT_STORAGE}")
    parser.add_argument(
        "--catalog", help="Unity Catalog catalog of the pipelines (with --schema, --event-log)"
    )
    parser.add_argument("--schema", help="schema of the bronze tables and the event logs")
    parser.add_argument(
        "--event-log", action="append", metavar="NAME", help="published event log table (repeatable)"
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="the tables configuration (default: conf/tables.yml of the repository; the bundle's jobs pass "
        "the deployed ${workspace.file_path}/conf/tables.yml)",
    )
    parser.set_defaults(handler=_audit)


def _audit(args: argparse.Namespace) -> int:
    from inventory_bronze.audit.store import audit_catalog, audit_local, default_targets
    from inventory_bronze.cli import options
    from inventory_bronze.spark_session import get_spark

    on_catalog = bool(args.catalog or args.schema or args.event_log)
    if on_catalog and not (args.catalog and args.schema and args.event_log):
        raise SystemExit("--catalog, --schema and --event-log go together")
    spark = get_spark("inventory-bronze-audit")
    targets = default_targets(options.bronze_config(args.config))
    if on_catalog:
        result = audit_catalog(spark, args.catalog, args.schema, args.event_log, targets)
    else:
        if not Path(args.storage).is_dir():
            raise SystemExit(f"no pipeline storage at {args.storage} (run `inventory-bronze run` first)")
        result = audit_local(spark, args.storage, targets)
    print(result.summary())
    return 0
