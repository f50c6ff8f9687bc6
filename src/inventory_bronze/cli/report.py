"""`inventory-bronze report`: a static, self-contained HTML page (inline SVG, no network) of the audit:
pass-rate trend per rule, rows per table per update, failing rules, the pipeline graph with row counts."""

from __future__ import annotations

import argparse
from pathlib import Path

from inventory_bronze.cli import options

DEFAULT_STORAGE = options.local_storage()


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "report",
        help="write a static HTML quality report from the event logs and audit tables",
        description="Derive the audit (incrementally) and write one self-contained HTML page: pass rate "
        "per rule over updates, rows per table per update, failing rules, failed updates and the pipeline "
        "graph (flow_definition events) with each dataset's rows in the last update.",
    )
    parser.add_argument("--storage", type=Path, default=DEFAULT_STORAGE, help=f"default {DEFAULT_STORAGE}")
    parser.add_argument("--out", type=Path, help="output file (default STORAGE/audit/report.html)")
    parser.add_argument(
        "--config", help="the tables configuration (default: conf/tables.yml of the checkout)"
    )
    parser.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from inventory_bronze.audit.report import write_report
    from inventory_bronze.audit.store import LOCAL_FOLDER, default_targets, event_log_paths
    from inventory_bronze.spark_session import get_spark

    if not event_log_paths(args.storage):
        print(f"no pipeline event logs under {args.storage}")
        return 1
    out = args.out or Path(args.storage) / LOCAL_FOLDER / "report.html"
    targets = default_targets(options.bronze_config(args.config))
    write_report(get_spark("inventory-bronze-report"), args.storage, out, targets)
    print(f"report: {out}")
    return 0
