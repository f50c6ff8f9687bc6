"""`localdlt run`: one update of a pipeline (source files, or a bundle's pipeline resource)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import localdlt.cli.options as opt
from localdlt.cli.errors import UsageError, handled
from localdlt.cli.source import resolve

DESCRIPTION = (
    "Run one update of the pipeline made of PATH (files or folders of .py files), or of a bundle's pipeline "
    "(--bundle DIR --pipeline KEY: its libraries, configuration, name and environment). Datasets are "
    "written as Delta tables under STORAGE/tables/<name>; the event log is the Delta table "
    "STORAGE/system/events. Exit status 1 when the update fails."
)


def register(
    sub: argparse._SubParsersAction, before_spark: Callable[[], None] | None = None
) -> argparse.ArgumentParser:
    """The `run` sub-command; `before_spark` runs just before the session starts (e.g. to choose its jars)."""
    run = sub.add_parser("run", help="run one update of a pipeline", description=DESCRIPTION)
    add_arguments(run)
    run.set_defaults(handler=handled(lambda args: _run(args, before_spark)))
    return run


def add_arguments(run: argparse.ArgumentParser) -> None:
    opt.add_source(run)
    run.add_argument(
        "--storage", required=True, type=opt.storage_folder, metavar="DIR", help="pipeline storage folder"
    )
    run.add_argument(
        "--name", help="pipeline name shown in the event log (default: the bundle's name, else the folder's)"
    )
    refresh = run.add_mutually_exclusive_group()
    refresh.add_argument("--full-refresh", action="store_true", help="reset and recompute every table")
    refresh.add_argument(
        "--full-refresh-tables", metavar="A,B", help="reset and recompute only these tables (comma-separated)"
    )
    run.add_argument(
        "--continuous",
        action="store_true",
        help="keep processing new input until stopped (Ctrl-C); with --bundle only a pipeline the bundle "
        "declares `continuous: true` runs so (without --continuous every pipeline runs one triggered update)",
    )
    run.add_argument(
        "--max-seconds",
        type=opt.non_negative_float,
        metavar="N",
        help="with --continuous: stop cleanly after N seconds",
    )
    run.add_argument(
        "--workers", type=opt.positive_int, default=2, metavar="N", help="flows run at once (default 2)"
    )
    run.add_argument(
        "--jit",
        choices=["quick", "full"],
        help="the driver JVM's JIT: quick (C1 only: the faster choice for one short update, the default "
        "unless $LOCALDLT_JIT says otherwise) or full (C1 and C2: faster for updates of minutes)",
    )
    run.add_argument("--quiet", action="store_true", help="print only the final summary")


def _run(args: argparse.Namespace, before_spark: Callable[[], None] | None) -> int:
    if args.max_seconds is not None and not args.continuous:
        raise UsageError("--max-seconds needs --continuous")
    from localdlt import UpdateOptions, run_update
    from localdlt.environment import install_environment
    from localdlt.errors import PipelineError
    from localdlt.progress import ConsoleProgress
    from localdlt.session import get_spark, jit_mode

    try:
        jit = jit_mode(args.jit, default="quick")  # one update per process: see localdlt.session.JIT_OPTIONS
    except PipelineError as err:
        raise UsageError(str(err)) from None
    source = resolve(args)
    install_environment(source.dependencies, source.key)  # before Spark: its workers inherit PYTHONPATH
    continuous = args.continuous and (args.bundle is None or source.continuous)
    if args.continuous and not continuous:
        print(f"pipeline {source.key} is triggered (not continuous in the bundle): one update", flush=True)
    if before_spark is not None:
        before_spark()
    started = time.monotonic()
    spark = get_spark("localdlt", jit=jit)
    print(f"Spark started in {time.monotonic() - started:.1f}s (JIT {jit})", flush=True)
    options = UpdateOptions(
        full_refresh=args.full_refresh,
        full_refresh_tables=[t.strip() for t in args.full_refresh_tables.split(",") if t.strip()]
        if args.full_refresh_tables
        else None,
        continuous=continuous,
        max_seconds=args.max_seconds if continuous else None,
        max_workers=args.workers,
    )
    progress = ConsoleProgress(quiet=args.quiet)
    result = run_update(
        source.paths,
        args.storage,
        conf=source.conf,
        options=options,
        pipeline_name=args.name or source.name,
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
