"""Benchmark of the bronze layer against the floor and the seed's approach (issue [performance]).

    .venv/bin/python bench/bench_bronze.py [--scale 1]       # or: inventory-bronze bench [--scale 1]

One run on one generated dataset (seeded into a PostgreSQL of its own, var/bench-bronze/pg, dirty rows
included), measuring side by side:

  floor        PostgreSQL `COPY ... TO STDOUT` of the ten tables to nowhere (psycopg), one stream, then two
               streams in parallel (the tables split by size);
  seed         the seed's approach: Spark JDBC, one partition, fetch size 10 000, each table appended to a
               Delta table;
  initial      our initial load: full refresh of both bronze pipelines (metadata, rules, quarantine, PII
               encryption, CDC snapshots), Spark/JVM start reported apart;
  incremental  the change workload (10 000 changes), then one triggered update of both pipelines;
  CDC lag      the CDC pipeline in continuous mode while the workload runs at 1 000 changes/s for 60 s;
               probes (an update of one row of tests.inventory and tests.orders every 0.5 s, its
               commit time taken when the commit returns) against the commit time (mtime of the
               `_delta_log` JSON) of the first version of bz_<table> that shows them: p50 / p95 / max;
  resources    peak RSS of this process tree (driver, JVM, Python workers; psutil, sampled every 0.2 s)
               and CPU seconds (the tree, and the PostgreSQL server apart) per million source rows.

It prints the figures as ratios and checks the goals (at scale 1): initial load <= 4x the floor (one
stream) and >= 3x faster than the seed's approach; the 10 k-change update <= 10% of the initial load and
<= 1.5x its time at scale 0.1 (taken from the last scale-0.1 run's var/bench-bronze/result-0.1.json);
CDC p95 <= 5 s; peak memory <= 6 GB. Each figure comes with the load average (other work on the machine
slows every figure; `uptime` is printed before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inventory_bronze.source.capture_slot import ensure_capture
from inventory_devkit import project

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "var" / "bench-bronze"
GB = 1024**3
GOALS = {
    "initial_vs_floor": 4.0,  # initial load <= 4x the floor
    "seed_vs_initial": 3.0,  # the seed's approach >= 3x our initial load
    "incremental_share": 0.10,  # 10 k-change update <= 10% of the initial load
    "incremental_vs_small": 1.5,  # <= 1.5x its time at scale 0.1
    "cdc_p95_s": 5.0,
    "cdc_p50_s": 2.0,
    "capture_cores_per_k": 0.2,  # capture CPU per 1 000 changes/s offered to the captured tables
    "tree_cores_per_k": 1.5,
    "peak_rss_gb": 6.0,
}
PROBES = {"inventory": "Inventory_ID", "orders": "Order_ID"}  # CDC tables probed for the lag


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options (also those of `inventory-bronze bench`)."""
    parser.add_argument("--scale", type=float, default=1.0, help="source volume (1 = 3.36 M rows; default 1)")
    parser.add_argument("--seed", type=int, default=42, help="random seed of the generator (42)")
    parser.add_argument("--dirty-rate", type=float, default=0.02, help="share of rule-breaking rows (0.02)")
    parser.add_argument("--changes", type=int, default=10_000, help="changes before the incremental update")
    parser.add_argument("--cdc-rate", type=float, default=1000, help="changes/s during the lag test (1000)")
    parser.add_argument("--cdc-seconds", type=float, default=300, help="length of the lag test (300 s)")
    parser.add_argument("--skip-seed-approach", action="store_true", help="do not run the seed's approach")
    parser.add_argument("--skip-cdc", action="store_true", help="do not run the continuous lag test")
    parser.add_argument(
        "--cdc-only",
        action="store_true",
        help="only the initial load and the continuous lag test (no seed's approach, no incremental update)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="write Spark's event log and print, per flow, where the initial load and the update spent their time",
    )
    parser.add_argument("--work", type=Path, default=WORK, help=f"server and storage folder (default {WORK})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_bronze", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------- resources
def _tree(root: Any) -> list[Any]:
    import psutil

    try:
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return [root]


def tree_cpu(root: Any) -> float:
    """CPU seconds of a process tree: every live process and the children it has reaped (a worker that
    exits moves its time to its parent's children times, so the sum stays continuous)."""
    import psutil

    total = 0.0
    for proc in _tree(root):
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


class Sampler:
    """Samples the RSS of this process tree every 0.2 s; peaks per phase."""

    def __init__(self) -> None:
        import psutil

        self.root = psutil.Process(os.getpid())
        self.peak = 0
        self.phase_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def rss(self) -> int:
        import psutil

        total = 0
        for proc in _tree(self.root):
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            rss = self.rss()
            self.peak = max(self.peak, rss)
            self.phase_peak = max(self.phase_peak, rss)

    def reset_phase(self) -> None:
        self.phase_peak = self.rss()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Figure:
    name: str
    seconds: float
    rows: int = 0
    cpu: float = 0.0  # CPU seconds of this process tree
    pg_cpu: float = 0.0  # CPU seconds of the PostgreSQL server
    peak_rss: int = 0
    load: float = 0.0  # 1-minute load average at the end
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Bench:
    def __init__(self, pg_pid: int) -> None:
        self.sampler = Sampler()
        self.pg_pid = pg_pid
        self.figures: dict[str, Figure] = {}

    @contextmanager
    def measure(self, key: str, name: str, rows: int = 0) -> Iterator[Figure]:
        from bench_source import server_cpu

        fig = Figure(name, 0.0, rows)
        self.sampler.reset_phase()
        cpu, pg = tree_cpu(self.sampler.root), server_cpu(self.pg_pid)
        started, started_ms = time.perf_counter(), int(time.time() * 1000)
        yield fig
        fig.seconds = time.perf_counter() - started
        fig.extra["window_ms"] = (started_ms, int(time.time() * 1000))
        fig.cpu = tree_cpu(self.sampler.root) - cpu
        fig.pg_cpu = server_cpu(self.pg_pid) - pg
        fig.peak_rss = max(self.sampler.phase_peak, self.sampler.rss())
        fig.load = os.getloadavg()[0]
        self.figures[key] = fig
        print(
            f"  {name}: {fig.seconds:.1f} s, CPU {fig.cpu:.1f} s (PostgreSQL {fig.pg_cpu:.1f} s), "
            f"peak RSS {fig.peak_rss / GB:.2f} GB, load {fig.load:.1f} {fig.note}",
            flush=True,
        )


# ----------------------------------------------------------------------------------------- floor
def copy_tables(info: Any, tables: list[str]) -> int:
    """COPY each table TO STDOUT, discarding the bytes; returns the bytes received."""
    from psycopg import sql

    received = 0
    with info.connect(autocommit=True) as conn, conn.cursor() as cur:
        for name in tables:
            stmt = sql.SQL("COPY {} TO STDOUT").format(sql.Identifier("tests", name))
            with cur.copy(stmt) as copy:
                for block in copy:
                    received += len(block)
    return received


def split_by_size(counts: dict[str, int], streams: int) -> list[list[str]]:
    groups: list[list[str]] = [[] for _ in range(streams)]
    sizes = [0] * streams
    for name in sorted(counts, key=counts.get, reverse=True):  # type: ignore[arg-type]
        i = sizes.index(min(sizes))
        groups[i].append(name)
        sizes[i] += counts[name]
    return groups


# ------------------------------------------------------------------------------------------ seed
def seed_approach(spark: Any, info: Any, tables: list[str], target: Path) -> None:
    """The seed's notebook: one JDBC partition per table, fetch size 10 000, appended to Delta."""
    shutil.rmtree(target, ignore_errors=True)
    for name in tables:
        (
            spark.read.format("jdbc")
            .option("url", info.jdbc_url)
            .option("dbtable", f"tests.{name}")
            .option("user", info.user)
            .option("password", info.password)
            .option("driver", "org.postgresql.Driver")
            .option("fetchsize", "10000")
            .load()
            .write.format("delta")
            .mode("append")
            .save(str(target / name))
        )


# --------------------------------------------------------------------------------------- CDC lag
@dataclass
class Probe:
    table: str
    value_us: int  # the probed row's Updated_At, microseconds since the epoch
    committed: float  # time.time() when the commit returned


def probe_rows(spark: Any, tables_dir: Path) -> dict[str, int]:
    """One row per probed table: its largest key in bronze (a row the rules let through: a probe of a
    dropped row would never show)."""
    from pyspark.sql import functions as F

    return {
        name: int(spark.read.format("delta").load(str(tables_dir / f"bz_{name}")).agg(F.max(key)).first()[0])
        for name, key in PROBES.items()
    }


def run_probes(info: Any, keys: dict[str, int], stop: threading.Event, every: float = 0.5) -> list[Probe]:
    probes: list[Probe] = []
    with info.connect(autocommit=True) as conn:
        while not stop.wait(every):
            for name, key in PROBES.items():
                row = conn.execute(
                    f'UPDATE tests.{name} SET "Updated_At" = clock_timestamp() WHERE "{key}" = %s '
                    'RETURNING (extract(epoch FROM "Updated_At") * 1000000)::bigint',
                    (keys[name],),
                ).fetchone()
                if row is not None:
                    probes.append(Probe(name, int(row[0]), time.time()))
    return probes


def delta_versions(path: Path, after: int) -> list[tuple[int, float]]:
    """(version, commit time) of the table's versions after `after`; the commit time is when the log
    entry appeared (its mtime)."""
    out = []
    for entry in (path / "_delta_log").glob("*.json"):
        if not entry.stem.isdigit():
            continue
        version = int(entry.stem)
        if version > after:
            out.append((version, entry.stat().st_mtime_ns / 1e9))
    return sorted(out)


def latest_version(path: Path) -> int:
    return max((int(p.stem) for p in (path / "_delta_log").glob("*.json") if p.stem.isdigit()), default=-1)


def probe_lags(
    spark: Any, path: Path, table: str, key: int, after: int, probes: list[Probe]
) -> list[tuple[float, float]]:
    """(commit time, seconds from it to the first version of `path` whose row shows it) of each probe."""
    from pyspark.sql import functions as F

    column = PROBES[table]
    seen: list[tuple[int, float]] = []  # (Updated_At in us, version commit time)
    for version, committed in delta_versions(path, after):
        rows = (
            spark.read.format("delta")
            .option("versionAsOf", version)
            .load(str(path))
            .where(F.col(column) == key)
            .select(F.unix_micros("Updated_At").alias("u"))
            .collect()
        )
        if rows and rows[0].u is not None:
            seen.append((int(rows[0].u), committed))
    lags = []
    for probe in probes:
        if probe.table != table:
            continue
        shown = [t for u, t in seen if u >= probe.value_us]
        lags.append((probe.committed, shown[0] - probe.committed if shown else float("inf")))
    return lags


# ------------------------------------------------------------------------------------------ main
def uptime() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def prepare_source(args: argparse.Namespace) -> tuple[Any, int, dict[str, int]]:
    """This benchmark's own server, freshly seeded, capture slots from now on, a PII key."""
    from inventory_bronze import pii
    from inventory_bronze.secrets import env_var_for, source_connection
    from inventory_bronze.source.capture_connection import open_connection
    from inventory_bronze.source.capture_slot import CaptureNames, drop_capture
    from inventory_devkit.postgres.load import row_counts, seed_database
    from inventory_devkit.postgres.server import ensure_server, server_status

    pg_dir = args.work / "pg"
    os.environ["INVENTORY_BRONZE_SECRETS_FILE"] = str(pg_dir.resolve() / "secrets.json")
    info = ensure_server(pg_dir)
    pid = server_status(pg_dir).pid
    assert pid is not None
    with open_connection(source_connection()) as conn:  # a fresh source: old slots point at old data
        for qualified in project.bronze_config().capture_tables:
            drop_capture(conn, CaptureNames.for_table(qualified))
    started = time.perf_counter()
    seed_database(info, scale=args.scale, seed=args.seed, dirty_rate=args.dirty_rate, quiet=True)
    with info.connect(autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # hint bits and visibility map set: every reader sees the same pages
        counts = row_counts(conn)
    print(f"seeded {sum(counts.values()):,} rows in {time.perf_counter() - started:.1f} s ({info.url})")
    ensure_capture(project.bronze_config().capture_tables)
    os.environ[env_var_for(pii.DEFAULT_KEY_SECRET)] = pii.generate_key()
    pii.reset_keys()
    return info, pid, counts


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


def run(args: argparse.Namespace) -> int:
    args.work = args.work.resolve()
    sys.path.insert(0, str(REPO / "src"))
    sys.path.insert(0, str(REPO / "bench"))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    print(
        f"bronze benchmark: scale {args.scale:g}, seed {args.seed}, dirty rate {args.dirty_rate:g}; {uptime()}"
    )
    info, pg_pid, counts = prepare_source(args)
    rows = sum(counts.values())
    tables = list(counts)
    bench = Bench(pg_pid)

    # --- the floor
    with bench.measure("floor1", "floor: COPY TO STDOUT, one stream", rows):
        copy_tables(info, tables)
    groups = split_by_size(counts, 2)
    with bench.measure("floor2", "floor: COPY TO STDOUT, two streams", rows), ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda g: copy_tables(info, g), groups))

    # --- Spark start
    from inventory_bronze.spark_session import get_spark

    with bench.measure("jvm", "Spark/JVM start"):
        # On a busy machine a Python worker (data source, UDF) can take minutes to start: wait longer
        # than the session's default before failing the run.
        spark = get_spark(
            "inventory-bronze", {"spark.python.authenticate.socketTimeout": "900s", **profile_conf(args)}
        )
        spark.range(1).count()

    # --- our initial load
    from inventory_devkit.local_run import run_pipelines

    storage = args.work / "pipelines"
    shutil.rmtree(storage, ignore_errors=True)
    with bench.measure("initial", "ours: initial load (full refresh, both pipelines)", rows) as fig:
        results = run_pipelines(storage=storage, full_refresh=True, quiet=True)
        fig.extra["pipelines"] = {k: round(r.seconds, 1) for k, r in results.items()}
        fig.extra["flows"] = flow_seconds(results)
    print_flows(results)
    failed = [k for k, r in results.items() if not r.ok]
    if failed:
        raise SystemExit(f"initial load failed: {[str(results[k].error) for k in failed]}")

    # --- the seed's approach
    if not args.skip_seed_approach and not args.cdc_only:
        with bench.measure("seed", "seed's approach: JDBC 1 partition, fetch 10 000 -> Delta", rows):
            seed_approach(spark, info, tables, args.work / "seed-approach")

    # --- incremental update after 10 k changes
    from inventory_devkit.postgres.workload import run_changes

    if not args.cdc_only:
        report = run_changes(info, count=args.changes, seed=args.seed + 1, quiet=True)
        print(f"  workload: {report.total_changes:,} changes in {report.seconds:.1f} s")
        with bench.measure(
            "incremental", f"ours: update after {report.total_changes:,} changes", rows
        ) as fig:
            results = run_pipelines(storage=storage, quiet=True)
            fig.extra["flows"] = flow_seconds(results)
        print_flows(results)
        failed = [k for k, r in results.items() if not r.ok]
        if failed:
            raise SystemExit(f"incremental update failed: {[str(results[k].error) for k in failed]}")

    # --- CDC lag in continuous mode
    lags: dict[str, list[tuple[float, float]]] = {}
    if not args.skip_cdc:
        lags = cdc_lag(args, bench, spark, info, pg_pid, storage, rows)

    bench.sampler.stop()
    status = report_results(args, bench, counts, lags)
    if args.profile:
        spark.stop()  # Spark's event log complete on disk
        print_profiles(args, bench)
    return status


def flow_seconds(results: dict[str, Any]) -> dict[str, float]:
    return {name: o.seconds for r in results.values() for name, o in r.flows.items()}


def profile_conf(args: argparse.Namespace) -> dict[str, str]:
    """Spark's event log (the data behind the Spark UI), with --profile."""
    if not args.profile:
        return {}
    events = args.work / "spark-events"
    shutil.rmtree(events, ignore_errors=True)
    events.mkdir(parents=True)
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": events.as_uri(),
        "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false",
    }


def print_profiles(args: argparse.Namespace, bench: Bench) -> None:
    from spark_profile import profile, report

    for key in ("initial", "incremental", "cdc"):
        fig = bench.figures.get(key)
        if fig is None:
            continue
        since, until = fig.extra["window_ms"]
        print(
            f"\nwhere the time went, {fig.name} ({fig.seconds:.1f} s; Spark's event log, {args.work / 'spark-events'}):"
        )
        print(report(profile(args.work / "spark-events", since, until), fig.extra.get("flows")))


def print_flows(results: dict[str, Any], top: int = 8) -> None:
    """The slowest flows of an update (flows of one pipeline run in parallel)."""
    flows = [(o.seconds, name) for r in results.values() for name, o in r.flows.items()]
    print("    slowest flows: " + ", ".join(f"{n} {s:.1f}s" for s, n in sorted(flows, reverse=True)[:top]))


def wait_streams(spark: Any, timeout: float) -> float:
    """Seconds until the continuous pipeline's streaming queries all made progress once."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        active = spark.streams.active
        if len(active) >= 6 and all(q.lastProgress is not None for q in active):
            return time.perf_counter() - started
        time.sleep(0.5)
    return float("nan")


def wait_visible(
    spark: Any, tables_dir: Path, keys: dict[str, int], probes: list[Probe], limit: float, runner: Any
) -> float:
    """Seconds until every table shows its last probe (the pipeline caught up), at most `limit`."""
    from pyspark.sql import functions as F

    started = time.perf_counter()
    last = {p.table: p.value_us for p in probes}
    while last and time.perf_counter() - started < limit and runner.is_alive():
        for table in list(last):
            rows = (
                spark.read.format("delta")
                .load(str(tables_dir / f"bz_{table}"))
                .where(F.col(PROBES[table]) == keys[table])
                .select(F.unix_micros("Updated_At").alias("u"))
                .collect()
            )
            if rows and rows[0].u is not None and rows[0].u >= last[table]:
                del last[table]
        time.sleep(1.0)
    return time.perf_counter() - started


def cdc_lag(
    args: argparse.Namespace, bench: Bench, spark: Any, info: Any, pg_pid: int, storage: Path, rows: int
) -> dict[str, list[tuple[float, float]]]:
    from cdc_monitor import CdcMonitor, print_minutes

    from inventory_bronze import config
    from inventory_bronze.source.capture_slot import default_name
    from inventory_devkit.local_run import run_pipelines
    from inventory_devkit.postgres.workload import run_changes

    tables_dir = storage / "inventory_bronze_cdc" / "tables"
    qualified = config.load(project.CONFIG_PATH).capture_tables
    qualified = [q for q in qualified if (tables_dir / f"bz_{q.split('.', 1)[1]}").is_dir()]
    captured = [q.split(".", 1)[1] for q in qualified]
    keys = probe_rows(spark, tables_dir)
    before = {t: latest_version(tables_dir / f"bz_{t}") for t in PROBES}
    startup_limit, drain_limit = 60.0, 180.0
    outcome: dict[str, Any] = {}
    stop_pipeline = threading.Event()

    def pipeline() -> None:
        outcome["results"] = run_pipelines(
            storage=storage,
            only=["inventory_bronze_cdc"],
            continuous=True,
            max_seconds=startup_limit + args.cdc_seconds + drain_limit,
            quiet=True,
            stop=stop_pipeline,
        )

    monitor = CdcMonitor(info, pg_pid, captured, [default_name(q) for q in qualified])
    name = f"ours: CDC continuous, {args.cdc_rate:g} changes/s for {args.cdc_seconds:g} s"
    with bench.measure("cdc", name, rows) as fig:
        runner = threading.Thread(target=pipeline)
        runner.start()
        ready = wait_streams(spark, startup_limit)
        fig.extra["startup_s"] = round(ready, 1)
        stop = threading.Event()
        probes: list[Probe] = []
        prober = threading.Thread(target=lambda: probes.extend(run_probes(info, keys, stop)))
        monitor.start()
        started = time.time()
        prober.start()
        report = run_changes(
            info, rate=args.cdc_rate, duration=args.cdc_seconds, seed=args.seed + 2, quiet=True
        )
        ended = time.time()
        stop.set()
        prober.join()
        fig.extra["changes"] = report.total_changes
        fig.extra["achieved_rate"] = round(report.total_changes / report.seconds)
        fig.extra["drain_s"] = round(wait_visible(spark, tables_dir, keys, probes, drain_limit, runner), 1)
        stop_pipeline.set()
        runner.join()
        monitor.stop()
    results = outcome.get("results", {})
    failed = [k for k, r in results.items() if not r.ok]
    if failed:
        raise SystemExit(f"continuous run failed: {[str(results[k].error) for k in failed]}")
    lags = {t: probe_lags(spark, tables_dir / f"bz_{t}", t, keys[t], before[t], probes) for t in PROBES}
    minutes = monitor.minutes(started, ended, tables_dir, [x for v in lags.values() for x in v])
    print(f"  caught up {fig.extra['drain_s']} s after the workload ended")
    print(f"\nCDC phase minute by minute ({', '.join(captured)}; the workload touches every table):")
    print_minutes(minutes)
    fig.extra["minutes"] = minutes
    return lags


def report_results(
    args: argparse.Namespace, bench: Bench, counts: dict[str, int], lags: dict[str, list[tuple[float, float]]]
) -> int:
    f = bench.figures
    rows = sum(counts.values())
    floor = f["floor1"].seconds
    initial = f["initial"].seconds
    print(f"\nresults: scale {args.scale:g}, {rows:,} source rows in 10 tables; {uptime()}")
    print(
        f"{'measure':<58} {'seconds':>8} {'rows/s':>11} {'x floor':>8} {'CPU s/M rows':>13} {'peak GB':>8} {'load':>5}"
    )
    for key, fig in f.items():
        if key == "cdc":
            continue
        rate = f"{fig.rows / fig.seconds:,.0f}" if fig.rows else ""
        ratio = f"{fig.seconds / floor:.1f}" if fig.rows else ""
        cpu = f"{fig.cpu / (fig.rows / 1e6):.1f}" if fig.rows else f"{fig.cpu:.1f}"
        if key.startswith("floor"):
            cpu = f"{fig.pg_cpu / (fig.rows / 1e6):.1f} pg"
        print(
            f"{fig.name:<58} {fig.seconds:8.1f} {rate:>11} {ratio:>8} {cpu:>13} "
            f"{fig.peak_rss / GB:8.2f} {fig.load:5.1f}"
        )
    print("(CPU s/M rows: this process tree - driver, JVM, Python workers; for the floor, PostgreSQL's)")
    pg_initial = f["initial"].pg_cpu / (rows / 1e6)
    print(f"PostgreSQL CPU during our initial load: {pg_initial:.1f} s per M rows")
    incremental = f["incremental"].seconds if "incremental" in f else None
    out: dict[str, Any] = {
        "scale": args.scale,
        "rows": rows,
        "figures": {k: {**vars(v)} for k, v in f.items()},
    }
    cdc_checks: list[tuple[str, float, float, str]] = []
    if lags:
        cdc_checks = report_cdc(bench.figures["cdc"], {t: [lag for _, lag in v] for t, v in lags.items()})
        out["cdc_lag"] = {t: v for t, v in lags.items()}
    peak = bench.sampler.peak
    small = load_small_result(args)
    print("\ngoals (set for scale 1):")
    checks = [
        (
            f"initial load <= {GOALS['initial_vs_floor']:g}x the floor (one stream)",
            initial / floor,
            GOALS["initial_vs_floor"],
            f"{initial:.1f} s / {floor:.1f} s",
        ),
    ]
    if "seed" in f:
        checks.append(
            (
                f"seed's approach >= {GOALS['seed_vs_initial']:g}x our initial load",
                f["seed"].seconds / initial,
                -GOALS["seed_vs_initial"],
                f"{f['seed'].seconds:.1f} s / {initial:.1f} s",
            )
        )
    if incremental is not None:
        checks.append(
            (
                "10 k-change update <= 10% of the initial load",
                incremental / initial,
                GOALS["incremental_share"],
                f"{incremental:.1f} s / {initial:.1f} s",
            )
        )
    if small is not None and incremental is not None and args.scale != small["scale"]:
        checks.append(
            (
                f"10 k-change update <= {GOALS['incremental_vs_small']:g}x its time at scale {small['scale']:g}",
                incremental / small["incremental"],
                GOALS["incremental_vs_small"],
                f"{incremental:.1f} s / {small['incremental']:.1f} s (that run: {small['when']})",
            )
        )
    checks.extend(cdc_checks)
    checks.append(("peak memory <= 6 GB", peak / GB, GOALS["peak_rss_gb"], f"{peak / GB:.2f} GB"))
    for text, value, limit, detail in checks:
        met = value >= -limit if limit < 0 else value <= limit
        print(f"  {text:<58} {value:6.2f}  ({detail}) -> {'met' if met else 'NOT met'}")
    if incremental is not None:
        out["incremental"] = incremental
    out["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out["peak_rss"] = peak
    (args.work / f"result-{args.scale:g}.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    return 0


def report_cdc(cdc: Figure, lags: dict[str, list[float]]) -> list[tuple[str, float, float, str]]:
    """Print the CDC phase's lags; return its goals' checks (issue [cdc-latency])."""
    from cdc_monitor import CAPTURE, TREE, percentile

    every = [x for v in lags.values() for x in v]
    finite = [x for x in every if x != float("inf")]
    print(
        f"\nCDC lag, source commit -> visible in bz_<table> ({cdc.extra['changes']:,} changes at "
        f"{cdc.extra['achieved_rate']:,}/s, streams up after {cdc.extra['startup_s']} s, "
        f"peak {cdc.peak_rss / GB:.2f} GB, load {cdc.load:.1f}):"
    )
    for table, values in {**lags, "all": every}.items():
        ok = [x for x in values if x != float("inf")]
        print(
            f"  {table:<10} probes {len(values):>4}  p50 {percentile(ok, 0.5):5.2f} s  "
            f"p95 {percentile(ok, 0.95):5.2f} s  max {max(ok, default=float('nan')):5.2f} s"
            f"  not visible {len(values) - len(ok)}"
        )
    whole = len(finite) == len(every)
    p50 = percentile(finite, 0.5) if whole else float("inf")
    p95 = percentile(finite, 0.95) if whole else float("inf")
    minutes = cdc.extra["minutes"]
    full = [m for m in minutes if m.lags] or minutes
    first, last = percentile(full[0].lags, 0.5), percentile(full[-1].lags, 0.5)
    offered = sum(m.offered for m in minutes) / len(minutes)
    per_k = 1000 / offered if offered else float("inf")
    capture = sum(m.cores.get(k, 0.0) for m in minutes for k in CAPTURE) / len(minutes) * per_k
    tree = sum(m.cores.get(k, 0.0) for m in minutes for k in TREE) / len(minutes) * per_k
    return [
        ("CDC lag p95 <= 5 s", p95, GOALS["cdc_p95_s"], f"{p95:.2f} s"),
        ("CDC lag p50 <= 2 s", p50, GOALS["cdc_p50_s"], f"{p50:.2f} s"),
        (
            "CDC lag does not grow (last minute's p50 <= 1.25x the first's + 1 s)",
            last - (1.25 * first + 1.0),
            0.0,
            f"first minute {first:.2f} s, last {last:.2f} s",
        ),
        (
            "capture <= 0.2 core per 1 000 changes/s",
            capture,
            GOALS["capture_cores_per_k"],
            f"{capture:.2f} cores at {offered:,.0f} changes/s to the captured tables",
        ),
        (
            "process tree <= 1.5 cores per 1 000 changes/s",
            tree,
            GOALS["tree_cores_per_k"],
            f"{tree:.2f} cores (incl. the workload generator)",
        ),
    ]


def load_small_result(args: argparse.Namespace) -> dict[str, Any] | None:
    path = args.work / "result-0.1.json"
    if args.scale == 0.1 or not path.is_file():
        return None
    return json.loads(path.read_text())


if __name__ == "__main__":
    raise SystemExit(main())
