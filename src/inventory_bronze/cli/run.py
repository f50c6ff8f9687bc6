"""`inventory-bronze run`: the bronze pipelines through the local runtime, defined by the same bundle
resource files that deploy them to Databricks (libraries and configuration), so the two cannot drift."""

from __future__ import annotations

import argparse
import sys

from inventory_bronze.cli.options import non_negative_float, storage_folder
from inventory_devkit import project

DEFAULT_STORAGE = project.ROOT / "var" / "pipelines"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "run",
        help="run the bronze pipelines locally (one update each)",
        description="Run the bronze pipelines of the bundle (resources/*.pipeline.yml) through the local "
        "runtime: the triggered pipeline (batch, full refresh, micro-batch tables), then the CDC pipeline "
        "(triggered, or continuous with --continuous). Storage: STORAGE/<pipeline>/tables/<dataset>.",
    )
    parser.add_argument(
        "--storage", type=storage_folder, default=DEFAULT_STORAGE, help=f"default {DEFAULT_STORAGE}"
    )
    parser.add_argument("--target", default="dev", help="bundle target whose settings to use (default dev)")
    parser.add_argument(
        "--pipeline", action="append", metavar="KEY", help="only this pipeline (repeatable; default all)"
    )
    parser.add_argument("--full-refresh", action="store_true", help="reset and reload every table")
    parser.add_argument("--continuous", action="store_true", help="run the CDC pipeline continuously")
    parser.add_argument(
        "--max-seconds", type=non_negative_float, metavar="N", help="with --continuous: stop after N s"
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summaries")
    parser.add_argument(
        "--no-reconcile", action="store_true", help="skip comparing bronze with the source afterwards"
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.max_seconds is not None and not args.continuous:
        print("--max-seconds needs --continuous", file=sys.stderr)
        return 2
    from inventory_bronze.redaction import redact
    from inventory_devkit.local_run import run_pipelines

    results = run_pipelines(
        storage=args.storage,
        target=args.target,
        only=args.pipeline,
        full_refresh=args.full_refresh,
        continuous=args.continuous,
        max_seconds=args.max_seconds,
        quiet=args.quiet,
    )
    failed = [key for key, r in results.items() if not r.ok]
    for key in failed:
        print(f"error: pipeline {key}: {redact(str(results[key].error))}", file=sys.stderr)
    mismatched = False
    rows = None
    if not args.no_reconcile and not failed and args.pipeline is None:
        from inventory_bronze.reconcile import format_table, reconcile
        from inventory_bronze.secrets import source_connection
        from inventory_bronze.source.capture_connection import open_connection
        from inventory_bronze.spark_session import get_spark

        print("\nreconciliation (source vs bronze + quarantine):")
        with open_connection(source_connection()) as conn:
            rows = reconcile(get_spark(), args.storage, conn, project.bronze_config())
        print(format_table(rows))
        mismatched = not all(r.ok for r in rows)
    from inventory_bronze.audit.store import audit_local, default_targets  # the audit of the updates just run
    from inventory_bronze.spark_session import get_spark

    targets = default_targets(project.bronze_config())
    print(audit_local(get_spark(), args.storage, targets, reconciliation=rows).summary())
    return 1 if failed or mismatched else 0
