"""Benchmark of the source data generator: rows/s of generating and COPY-loading DE.tests.

    .venv/bin/python bench/bench_source.py                  # scale 1: 3.26 M rows, the seed's volumes
    .venv/bin/python bench/bench_source.py --scale 0.1 --repeat 3

Prints one line per table (rows, seconds, rows/s) and the total; a table's time runs from the end of the
previous table's load to the end of its own (generation of the next table overlaps the current load,
so the per-table times add up to the total load time). The total also counts the fixed steps (schema
check, foreign keys, ANALYZE). Goal: >= 200 000 rows/s at scale 1.

Wall-clock rates depend on what else runs on the machine, so each run also prints the CPU seconds spent
by this process (generation, encoding) and by the PostgreSQL server (all its processes), and the rate
they imply when each has a core of its own: rows / max(generator CPU, server CPU).

Uses the local server (`inventory-bronze db start` folder, or --data-dir) and REPLACES the content of
DE.tests there (as `inventory-bronze seed` does).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="volume factor (default 1)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--dirty-rate", type=float, default=0.0, help="dirty-data rate (default 0)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs; the median total is reported (default 1)"
    )
    parser.add_argument("--data-dir", help="server folder (default: the local server's, var/postgres)")
    return parser.parse_args()


def server_cpu(postmaster_pid: int) -> float:
    """CPU seconds used so far by the server: the postmaster, its live children and the reaped ones."""
    import psutil

    root = psutil.Process(postmaster_pid)
    times = root.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in root.children(recursive=True):
        try:
            child_times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += child_times.user + child_times.system
    return total


def main() -> int:
    args = parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from inventory_devkit.postgres.load import seed_database
    from inventory_devkit.postgres.server import ensure_server, server_status

    info = ensure_server(args.data_dir)
    pid = server_status(args.data_dir).pid
    assert pid is not None
    print(
        f"generator benchmark: scale {args.scale:g}, seed {args.seed}, dirty rate {args.dirty_rate:g}, "
        f"{os.cpu_count()} CPUs, {info.url}"
    )
    totals, cpu_rates = [], []
    for run in range(1, args.repeat + 1):
        own, server = time.process_time(), server_cpu(pid)
        report = seed_database(info, scale=args.scale, seed=args.seed, dirty_rate=args.dirty_rate, quiet=True)
        own, server = time.process_time() - own, server_cpu(pid) - server
        print(f"run {run}:")
        for load in report.tables:
            print(
                f"  {load.table:<14} {load.rows:>10,} rows {load.seconds:7.2f} s {load.rows_per_second:>12,.0f} rows/s"
            )
        print(
            f"  {'total':<14} {report.total_rows:>10,} rows {report.seconds:7.2f} s {report.rows_per_second:>12,.0f} rows/s"
        )
        cpu_rate = report.total_rows / max(own, server)
        print(
            f"  CPU: generator {own:.2f} s, PostgreSQL {server:.2f} s -> {cpu_rate:,.0f} rows/s with a core each"
        )
        totals.append(report.rows_per_second)
        cpu_rates.append(cpu_rate)
    print(f"load average (1 min) after the runs: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.repeat > 1:
        print(
            f"median total: {statistics.median(totals):,.0f} rows/s wall clock, "
            f"{statistics.median(cpu_rates):,.0f} rows/s from CPU time, over {args.repeat} runs"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
