"""Benchmark of the log-based change capture (`pgcdc`): throughput and commit -> available lag.

    .venv/bin/python bench/bench_capture.py                 # 1 000 changes/s for 60 s, 200 000-change backlog
    .venv/bin/python bench/bench_capture.py --duration 15 --backlog 50000

1. Throughput: a backlog of changes (inserts, updates, deletes in transactions of 50) is committed first,
   then one availableNow query drains it; changes/s = changes / time from query start to end (query
   start-up included, and also shown without the first batch's start-up).
2. Lag: a workload commits `--rate` changes/s (transactions of `--txn-size`, default 20) for `--duration` s while a running
   query (default trigger) reads them; lag = time the batch reaches foreachBatch - the change's
   `_commit_ts` (server clock; same machine). Prints p50/p95/max, and the capture's CPU: the reader's
   Python process and the server processes serving it (in cores, and per 1 000 changes/s).

Uses the local server (`inventory-bronze db start` folder, or --data-dir) and its own table tests.bench_cdc.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
TABLE = "tests.bench_cdc"
LAG_TABLE = "tests.bench_lag"
TABLES = (TABLE, LAG_TABLE)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=1000, help="changes per second of the lag phase")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the lag phase")
    parser.add_argument("--backlog", type=int, default=200_000, help="changes of the throughput phase")
    parser.add_argument("--txn-size", type=int, default=20, help="changes per transaction of the lag phase")
    parser.add_argument("--data-dir", help="server folder (default: the local server's, var/postgres)")
    return parser.parse_args()


def prepare(info: object) -> None:
    from inventory_bronze.source.capture_slot import CaptureNames, drop_capture, setup_capture

    with info.connect(autocommit=True) as conn:  # type: ignore[attr-defined]
        for table in TABLES:
            names = CaptureNames.for_table(table)
            drop_capture(conn, names)
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(
                f'CREATE TABLE {table} ("Id" bigint PRIMARY KEY, "Qty" integer, "Price" numeric(12,2), '
                '"Updated_At" timestamptz DEFAULT now(), "Note" text)'
            )
            setup_capture(conn, names)


class Workload:
    """Inserts, updates and deletes in transactions of `txn_size` changes (pipelined statements)."""

    def __init__(self, conninfo: str, txn_size: int, table: str) -> None:
        self.conn = psycopg.connect(conninfo)
        self.txn_size = txn_size
        self.table = table
        self.next_id = 0
        self.live: list[int] = []

    def transaction(self) -> int:
        with self.conn.pipeline():
            self._statements(self.conn.cursor())
        self.conn.commit()
        return self.txn_size

    def _statements(self, cur: psycopg.Cursor) -> None:
        table = self.table
        for i in range(self.txn_size):
            kind = i % 10
            if kind < 6 or len(self.live) < 100:
                self.next_id += 1
                cur.execute(
                    f'INSERT INTO {table} ("Id", "Qty", "Price", "Note") VALUES (%s, %s, %s, %s)',
                    (self.next_id, i, 9.99, "n"),
                )
                self.live.append(self.next_id)
            elif kind < 9:
                key = self.live[(self.next_id * 7 + i) % len(self.live)]
                cur.execute(
                    f'UPDATE {table} SET "Qty" = "Qty" + 1, "Updated_At" = now() WHERE "Id" = %s', (key,)
                )
            else:
                key = self.live.pop((self.next_id * 13 + i) % len(self.live))
                cur.execute(f'DELETE FROM {table} WHERE "Id" = %s', (key,))


def capture_monitor(info: object) -> object:
    """CPU sampling of the capture's processes (bench/cdc_monitor.py) while the workload runs."""
    import psutil
    from cdc_monitor import CdcMonitor

    from inventory_bronze.source.capture_slot import default_name

    with info.connect(autocommit=True) as conn:  # type: ignore[attr-defined]
        (backend,) = conn.execute("SELECT pg_backend_pid()").fetchone()
    server = psutil.Process(backend).parent().pid
    return CdcMonitor(info, server, [LAG_TABLE.split(".")[1]], [default_name(LAG_TABLE)])


def print_capture_cpu(monitor: object, rate: float) -> None:
    samples = monitor.samples  # type: ignore[attr-defined]
    if len(samples) < 2:
        return
    seconds = samples[-1].at - samples[0].at
    readers = sum(x.cpu.get("capture readers", 0.0) for x in samples[1:]) / seconds
    server = sum(x.cpu.get("capture server", 0.0) for x in samples[1:]) / seconds
    per_k = 1000 / rate if rate else float("nan")
    print(
        f"capture CPU: reader {readers:.3f} + server {server:.3f} = {readers + server:.3f} cores at "
        f"{rate:,.0f} changes/s: {(readers + server) * per_k:.3f} cores per 1 000 changes/s"
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    args = parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from inventory_bronze.source.capture import register
    from inventory_bronze.spark_session import get_spark
    from inventory_devkit.postgres.server import ensure_server, write_secrets_file

    work = Path(tempfile.mkdtemp(prefix="bench-capture-"))
    if args.data_dir:  # keep the default server's secrets file as it is
        os.environ["INVENTORY_BRONZE_SECRETS_FILE"] = str(work / "secrets.json")
    info = ensure_server(args.data_dir)
    secrets_file = str(work / "secrets.json")
    write_secrets_file(info, Path(secrets_file))
    prepare(info)
    spark = get_spark("bench-capture")
    register(spark)

    def stream(checkpoint: str, max_changes: int, table: str = TABLE) -> object:
        return (
            spark.readStream.format("pgcdc")
            .option("table", table)
            .option("secretsFile", secrets_file)
            .option("snapshot", "false")
            .option("maxChangesPerBatch", str(max_changes))
            .load()
            .writeStream.option("checkpointLocation", str(work / checkpoint))
        )

    # warm-up: the first Python data source query of a session pays the workers' start-up
    q = stream("warm", 1000).foreachBatch(lambda df, _: df.count()).trigger(availableNow=True).start()
    q.awaitTermination()

    # 1. throughput
    load = Workload(info.conninfo, 50, TABLE)
    started = time.monotonic()
    produced = 0
    while produced < args.backlog:
        produced += load.transaction()
    print(f"backlog: {produced} changes committed in {time.monotonic() - started:.1f} s")
    counted: list[int] = []
    first_batch_at: list[float] = []

    def count(df: object, batch_id: int) -> None:
        if not first_batch_at:
            first_batch_at.append(time.monotonic())
        counted.append(df.count())  # type: ignore[attr-defined]

    started = time.monotonic()
    q = stream("throughput", 50_000).foreachBatch(count).trigger(availableNow=True).start()
    q.awaitTermination()
    elapsed = time.monotonic() - started
    total = sum(counted)
    print(
        f"capture throughput: {total} changes in {elapsed:.1f} s = {total / elapsed:,.0f} changes/s "
        f"({len(counted)} batches; query start-up included)"
    )

    # 2. lag at a steady rate
    lags: list[float] = []
    lock = threading.Lock()

    def measure(df: object, batch_id: int) -> None:
        arrived = time.time()
        stamps = [r[0] for r in df.select("_commit_ts").collect()]  # type: ignore[attr-defined]
        with lock:
            lags.extend(arrived - ts.timestamp() for ts in stamps)  # naive = local time, as PySpark made it

    query = stream("lag", 100_000, LAG_TABLE).foreachBatch(measure).start()
    time.sleep(3)
    monitor = capture_monitor(info)
    monitor.start()
    steady = Workload(info.conninfo, args.txn_size, LAG_TABLE)
    per_txn = args.txn_size / args.rate
    produced = 0
    started = time.monotonic()
    next_at = started
    while time.monotonic() - started < args.duration:
        produced += steady.transaction()
        next_at += per_txn
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    achieved = produced / (time.monotonic() - started)
    monitor.stop()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with lock:
            if len(lags) >= produced:
                break
        time.sleep(0.5)
    query.stop()
    with lock:
        got = list(lags)
    print(f"workload: {produced} changes at {achieved:,.0f} changes/s for {args.duration:.0f} s")
    if got:
        print(
            f"commit -> available lag over {len(got)} changes: p50 {percentile(got, 0.5):.2f} s, "
            f"p95 {percentile(got, 0.95):.2f} s, max {max(got):.2f} s"
        )
        print(f"mean {statistics.mean(got):.2f} s")
    print_capture_cpu(monitor, achieved)
    from inventory_bronze.source.capture_slot import CaptureNames, drop_capture

    with info.connect(autocommit=True) as conn:
        for table in TABLES:
            drop_capture(conn, CaptureNames.for_table(table))
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
