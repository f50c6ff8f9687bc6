"""`inventory-bronze dlt run`: run any pipeline source files through the local runtime (one update)."""

from __future__ import annotations

import argparse
import sys

from inventory_bronze.cli.options import (
    conf_entry,
    non_negative_float,
    parse_conf,
    positive_int,
    storage_folder,
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "dlt",
        help="run Databricks declarative-pipeline (dlt) source files locally",
        description="The local runtime for the dlt API: real Spark, real Delta Lake.",
    )
    dlt_sub = parser.add_subparsers(dest="dlt_command", metavar="SUBCOMMAND")
    run = dlt_sub.add_parser(
        "run",
        help="run one update of a pipeline",
        description="Run one update of the pipeline made of PATH (files or folders of .py files). "
        "Datasets are written as Delta tables under STORAGE/tables/<name>; the event log is the Delta "
        "table STORAGE/system/events. Exit status 1 when the update fails.",
    )
    run.add_argument("paths", nargs="+", metavar="PATH", help="pipeline source file or folder")
    run.add_argument(
        "--storage", required=True, type=storage_folder, metavar="DIR", help="pipeline storage folder"
    )
    run.add_argument(
        "--conf",
        action="append",
        type=conf_entry,
        default=[],
        metavar="KEY=VALUE",
        help="pipeline configuration entry, read by code with spark.conf.get(KEY) (repeatable)",
    )
    run.add_argument("--name", help="pipeline name shown in the event log (default: storage folder name)")
    refresh = run.add_mutually_exclusive_group()
    refresh.add_argument("--full-refresh", action="store_true", help="reset and recompute every table")
    refresh.add_argument(
        "--full-refresh-tables", metavar="A,B", help="reset and recompute only these tables (comma-separated)"
    )
    run.add_argument(
        "--continuous", action="store_true", help="keep processing new input until stopped (Ctrl-C)"
    )
    run.add_argument(
        "--max-seconds",
        type=non_negative_float,
        metavar="N",
        help="with --continuous: stop cleanly after N seconds",
    )
    run.add_argument(
        "--workers", type=positive_int, default=2, metavar="N", help="flows run at once (default 2)"
    )
    run.add_argument(
        "--jit",
        choices=["quick", "full"],
        help="the driver JVM's JIT: quick (C1 only: the faster choice for one short update, the default "
        "unless $LOCALDLT_JIT says otherwise) or full (C1 and C2: faster for updates of minutes)",
    )
    run.add_argument("--quiet", action="store_true", help="print only the final summary")
    run.set_defaults(handler=_run)
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)


def _run(args: argparse.Namespace) -> int:
    if args.max_seconds is not None and not args.continuous:
        print("--max-seconds needs --continuous", file=sys.stderr)
        return 2
    import time

    from inventory_bronze.spark_session import get_spark
    from localdlt import UpdateOptions, run_update
    from localdlt.errors import PipelineError
    from localdlt.progress import ConsoleProgress
    from localdlt.session import jit_mode

    try:
        jit = jit_mode(args.jit, default="quick")  # one update per process: see localdlt.session.JIT_OPTIONS
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    started = time.monotonic()
    spark = get_spark("localdlt", jit=jit)
    print(f"Spark started in {time.monotonic() - started:.1f}s (JIT {jit})", flush=True)

    options = UpdateOptions(
        full_refresh=args.full_refresh,
        full_refresh_tables=[t.strip() for t in args.full_refresh_tables.split(",")]
        if args.full_refresh_tables
        else None,
        continuous=args.continuous,
        max_seconds=args.max_seconds,
        max_workers=args.workers,
    )
    progress = ConsoleProgress(quiet=args.quiet)
    result = run_update(
        args.paths,
        args.storage,
        conf=parse_conf(args.conf),
        options=options,
        pipeline_name=args.name,
        spark=spark,
        progress=progress,
    )
    if args.quiet:
        progress.quiet = False
        progress.summary(result)
    if not result.ok:
        print(f"\nerror: {result.error}", file=sys.stderr)
        return 1
    return 0
