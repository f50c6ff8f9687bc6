"""`inventory-bronze demo`: the whole bronze layer on one machine, from an empty PostgreSQL to reconciled
bronze tables: start the server, seed it (dirty rows included), set up the change capture and the PII key,
run the initial update, apply a change workload, run an incremental update, reconcile and summarise."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from inventory_bronze.cli.options import dirty_rate, non_negative_float, non_negative_int, scale
from inventory_devkit import project

DEFAULT_STORAGE = project.ROOT / "var" / "demo"
#: in a storage folder the demo created: the demo replaces only such a folder (or its default one)
MARKER = ".inventory-bronze-demo"


def storage_problem(storage: Path) -> str | None:
    """Why the demo must not replace STORAGE, or None: it may replace a folder it created (marked), its
    default folder, an empty folder, or nothing; never a file or someone else's pipelines' storage."""
    if not storage.exists():
        return None
    if not storage.is_dir():
        return f"--storage {storage} is a file, not a folder: choose a new or empty folder."
    if (storage / MARKER).is_file() or storage.resolve() == DEFAULT_STORAGE.resolve():
        return None
    if any(storage.iterdir()):
        return (
            f"--storage {storage} holds data the demo did not create (no {MARKER} in it), and the demo "
            f"replaces its storage: choose a new or empty folder, or remove this one yourself."
        )
    return None


def _replace_storage(storage: Path) -> None:
    shutil.rmtree(storage, ignore_errors=True)
    storage.mkdir(parents=True, exist_ok=True)
    (storage / MARKER).write_text(
        "created by `inventory-bronze demo`, which replaces this folder on each run\n"
    )


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the bronze layer end to end on a local PostgreSQL (the README's first command)",
        description="Start the local PostgreSQL, seed it, run the initial update of both bronze pipelines, "
        "apply a change workload, run an incremental update (optionally run the CDC pipeline "
        "continuously for a while), then print per table: rows in source and bronze, quarantined, "
        "expectation results, reconciliation, and where the tables and the event logs are.",
    )
    parser.add_argument(
        "--scale", type=scale, default=0.01, help="source volume (1 = the seed's; default 0.01)"
    )
    parser.add_argument(
        "--dirty-rate", type=dirty_rate, default=0.02, help="share of rule-breaking rows (0.02)"
    )
    parser.add_argument(
        "--changes", type=non_negative_int, default=1000, help="changes between the two updates (1000)"
    )
    parser.add_argument(
        "--continuous-seconds",
        type=non_negative_float,
        default=0,
        metavar="N",
        help="then run the CDC pipeline continuously for N s under a change workload (default: skip)",
    )
    parser.add_argument("--seed", type=non_negative_int, default=42, help="random seed of the generator (42)")
    parser.add_argument("--storage", type=Path, default=DEFAULT_STORAGE, help=f"default {DEFAULT_STORAGE}")
    parser.set_defaults(handler=_demo)


def _step(text: str) -> float:
    print(f"\n=== {text}", flush=True)
    return time.monotonic()


def _demo(args: argparse.Namespace) -> int:
    from inventory_bronze import pii
    from inventory_bronze.errors import PiiProtectionError
    from inventory_bronze.secrets import SecretError, source_connection
    from inventory_bronze.source.capture_connection import open_connection
    from inventory_bronze.source.capture_slot import CaptureNames, drop_capture, ensure_capture
    from inventory_devkit.local_run import run_pipelines
    from inventory_devkit.postgres.load import seed_database
    from inventory_devkit.postgres.server import ensure_server
    from inventory_devkit.postgres.workload import run_changes

    problem = storage_problem(args.storage)
    if problem is not None:  # before anything runs: the demo also resets the source and its capture
        print(f"demo: {problem}", file=sys.stderr)
        return 2
    timings: dict[str, float] = {}
    started = _step("local PostgreSQL")
    info = ensure_server()
    print(f"running at {info.jdbc_url} (user {info.user})")

    with open_connection(source_connection()) as conn:  # a fresh source: old slots point at old data
        for qualified in project.bronze_config().capture_tables:
            drop_capture(conn, CaptureNames.for_table(qualified))
    t = _step(f"seed: scale {args.scale}, dirty rate {args.dirty_rate}")
    seed_database(info, scale=args.scale, seed=args.seed, dirty_rate=args.dirty_rate)
    timings["seed"] = time.monotonic() - t
    for line in ensure_capture(project.bronze_config().capture_tables):
        print(line)
    try:
        pii.load_keys()
    except Exception as err:  # no key yet: make one for this machine (kept in the local secrets file)
        if not isinstance(err, SecretError | PiiProtectionError):
            raise
        from argparse import Namespace

        from inventory_bronze.cli.pii import _keygen

        _keygen(Namespace(secret=None, write_local=True, force=False))  # the same path as `pii keygen`
        pii.reset_keys()
        print("PII key: generated and stored in the local secrets file")

    _replace_storage(args.storage)
    t = _step("initial update (both pipelines)")
    results = run_pipelines(storage=args.storage, quiet=True)
    timings["initial update"] = time.monotonic() - t
    ok = all(r.ok for r in results.values())
    ok = _reconcile(args.storage, "after the initial update") and ok

    t = _step(f"change workload: {args.changes} changes")
    run_changes(info, count=args.changes, seed=args.seed + 1)
    timings["changes"] = time.monotonic() - t
    t = _step("incremental update (both pipelines)")
    results = run_pipelines(storage=args.storage, quiet=True)
    timings["incremental update"] = time.monotonic() - t
    ok = ok and all(r.ok for r in results.values())

    if args.continuous_seconds > 0:
        import threading

        t = _step(f"CDC pipeline continuously for {args.continuous_seconds:.0f}s under 50 changes/s")
        feeder = threading.Thread(
            target=run_changes,
            kwargs={
                "info": info,
                "rate": 50,
                "duration": max(1.0, args.continuous_seconds - 5),
                "quiet": True,
            },
        )
        feeder.start()
        results = run_pipelines(
            storage=args.storage,
            only=["inventory_bronze_cdc"],
            continuous=True,
            max_seconds=args.continuous_seconds,
            quiet=True,
        )
        feeder.join()
        results.update(run_pipelines(storage=args.storage, only=["inventory_bronze_cdc"], quiet=True))
        timings["continuous"] = time.monotonic() - t
        ok = ok and all(r.ok for r in results.values())

    ok = _reconcile(args.storage, "after the last update") and ok
    from inventory_bronze.spark_session import get_spark

    _print_quality(get_spark(), args.storage)
    from inventory_bronze.audit.report import write_report

    report = write_report(get_spark(), args.storage, args.storage / "audit" / "report.html")
    print("\nwhere things are:")
    print(f"  bronze tables: {args.storage}/<pipeline>/tables/bz_*")
    print(f"  event logs:    {args.storage}/<pipeline>/system/events")
    print(f"  audit tables:  {args.storage}/audit/bz_audit_*")
    print(f"  report:        {report.resolve()}  (open it in a browser: file://{report.resolve()})")
    print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    print(f"total {time.monotonic() - started:.1f}s")
    return 0 if ok else 1


def _reconcile(storage: Path, when: str) -> bool:
    """Source vs bronze (+ quarantine) per table, printed; True when every table matches."""
    from inventory_bronze.audit.store import audit_local, default_targets
    from inventory_bronze.reconcile import format_table, reconcile
    from inventory_bronze.secrets import source_connection
    from inventory_bronze.source.capture_connection import open_connection
    from inventory_bronze.spark_session import get_spark

    _step(f"reconciliation {when}: source vs bronze (+ quarantine)")
    with open_connection(source_connection()) as conn:
        rows = reconcile(get_spark(), storage, conn, project.bronze_config())
    print(format_table(rows))
    targets = default_targets(project.bronze_config())
    print(
        audit_local(get_spark(), storage, targets, reconciliation=rows).summary()
    )  # audit of the updates so far
    return all(r.ok for r in rows)


def _print_quality(spark, storage: Path) -> None:  # noqa: ANN001
    from localdlt import monitoring

    print("\nexpectations of the last update (passing / failing records):")
    for events in sorted(Path(storage).glob("*/system/events")):
        df = monitoring.run(spark, str(events), "data_quality").orderBy("dataset", "expectation")
        for r in df.collect():
            if r.failing_records or r.passing_records:
                print(
                    f"  {r.dataset:<28} {r.expectation:<28} {r.passing_records:>9,} {r.failing_records:>7,}"
                )
