"""The floor under continuous CDC latency: the least Spark + Delta work a change must go through.

    .venv/bin/python bench/cdc_floor.py [--rate 1000] [--seconds 120] [--hops 1|2] [--scale 0.01]

One warm local Spark session with the runtime's settings (localdlt.session.get_spark) and, per CDC table
(inventory, orders, order_details, each sized like the demo's at `--scale`), one streaming query fed by
Spark's `rate` source (`--rate` changes/s split over the three: updates of existing keys and inserts).
Each micro-batch does only what a change cannot avoid on its way to bronze whatever the runtime's design:
  --hops 1: append the batch to the change archive and MERGE its latest row per key into the target
            (one query per table: the cheapest conceivable shape, capture and apply fused);
  --hops 2: the archive append in one query and the MERGE in a second that streams the archive, as a
            pipeline with a change archive between capture and apply runs it.
No source database, no decoding, no expectations, no quarantine, no event log, no CDC bookkeeping.
Micro-batches start as soon as the previous one ends (the default trigger), the fair scheduler gives each
query a pool, as the runtime does.

A change's lag is the time from its generation (the rate source's timestamp) to the end of the MERGE
batch that made it visible in the target. Printed per `--window` seconds: changes applied, lag p50/p95/max,
MERGE batch duration p50; then the whole run's figures after the warm-up and the CPU the process tree
used: what a latency goal for the real pipeline has to fit above.
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

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

# rows per table at scale 1 (the demo's generator) and its share of the changes offered
TABLES = {"inventory": (200_000, 0.37), "orders": (500_000, 0.32), "order_details": (2_000_000, 0.31)}


class Lags:
    """(merge end, lag seconds, batch seconds) of every change applied, shared by the queries."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list[tuple[float, float]] = []  # (applied at, lag)
        self.batches: list[tuple[float, float]] = []  # (ended at, duration)

    def add(self, started: float, ended: float, generated: list[float]) -> None:
        with self.lock:
            self.rows.extend((ended, ended - g) for g in generated)
            self.batches.append((ended, ended - started))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _changes(spark: SparkSession, rate: float, rows: int) -> DataFrame:
    """Changes at `rate`/s: 4 of 5 update an existing key, 1 of 5 inserts a new one."""
    per_second = max(1, round(rate))
    return (
        spark.readStream.format("rate")
        .option("rowsPerSecond", per_second)
        .load()
        .select(
            F.when(F.col("value") % 5 == 0, F.lit(rows) + F.col("value"))
            .otherwise((F.col("value") * 7919) % F.lit(rows))
            .alias("k"),
            (F.col("value") * 3).alias("v1"),
            F.concat(F.lit("name-"), F.col("value").cast("string")).alias("v2"),
            F.col("value").alias("_seq"),
            F.col("timestamp").alias("_generated"),
        )
    )


def _merge(spark: SparkSession, target: str, batch: DataFrame) -> None:
    from delta.tables import DeltaTable

    latest = batch.withColumn(
        "_rn", F.row_number().over(Window.partitionBy("k").orderBy(F.col("_seq").desc()))
    ).where("_rn = 1")
    (
        DeltaTable.forPath(spark, target)
        .alias("t")
        .merge(latest.drop("_rn", "_generated").alias("s"), "t.k = s.k")
        .whenMatchedUpdateAll(condition="s._seq > t._seq")
        .whenNotMatchedInsertAll()
        .execute()
    )


def _setup(spark: SparkSession, root: Path, table: str, rows: int) -> None:
    base = spark.range(rows).select(
        F.col("id").alias("k"),
        (F.col("id") * 3).alias("v1"),
        F.concat(F.lit("name-"), F.col("id").cast("string")).alias("v2"),
        F.lit(-1).cast("long").alias("_seq"),
    )
    base.write.format("delta").option("delta.enableDeletionVectors", "true").save(str(root / f"bz_{table}"))
    base.withColumn("_generated", F.current_timestamp()).write.format("delta").save(
        str(root / f"bz_{table}_changes")
    )


def _start(
    spark: SparkSession, root: Path, table: str, rows: int, rate: float, hops: int, lags: Lags
) -> list:
    target, archive = str(root / f"bz_{table}"), str(root / f"bz_{table}_changes")

    def applied(batch: DataFrame, started: float) -> None:
        generated = [r[0] / 1e6 for r in batch.select(F.unix_micros("_generated")).collect()]
        lags.add(started, time.time(), generated)

    def fused(batch: DataFrame, batch_id: int) -> None:
        started = time.time()
        spark.sparkContext.setLocalProperty("spark.scheduler.pool", table)
        batch = batch.persist()
        batch.write.format("delta").mode("append").save(archive)
        _merge(spark, target, batch)
        applied(batch, started)
        batch.unpersist()

    def archive_only(batch: DataFrame, batch_id: int) -> None:
        spark.sparkContext.setLocalProperty("spark.scheduler.pool", f"{table}-archive")
        batch.write.format("delta").mode("append").save(archive)

    def merge_only(batch: DataFrame, batch_id: int) -> None:
        started = time.time()
        spark.sparkContext.setLocalProperty("spark.scheduler.pool", table)
        batch = batch.persist()
        _merge(spark, target, batch)
        applied(batch, started)
        batch.unpersist()

    checkpoints = root / "_checkpoints"
    source = _changes(spark, rate, rows)
    if hops == 1:
        return [
            source.writeStream.foreachBatch(fused)
            .option("checkpointLocation", str(checkpoints / table))
            .start()
        ]
    first = (
        source.writeStream.foreachBatch(archive_only)
        .option("checkpointLocation", str(checkpoints / f"{table}-archive"))
        .start()
    )
    second = (
        spark.readStream.format("delta")
        .option("startingVersion", "latest")  # the changes appended from now on
        .load(archive)
        .writeStream.foreachBatch(merge_only)
        .option("checkpointLocation", str(checkpoints / f"{table}-merge"))
        .start()
    )
    return [first, second]


def _cpu_seconds() -> float:
    """CPU seconds of this process and its children (the JVM), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [os.getpid()]
    try:
        children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
        pids += [int(p) for p in children]
    except OSError:
        pass
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            continue
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="changes/s over the three tables (1000)")
    parser.add_argument("--seconds", type=int, default=120, help="measured run time (120)")
    parser.add_argument("--warm-up", type=int, default=30, help="seconds not counted at the start (30)")
    parser.add_argument(
        "--hops", type=int, choices=[1, 2], default=1, help="queries a change goes through (1)"
    )
    parser.add_argument("--scale", type=float, default=0.01, help="table sizes, as the demo's --scale (0.01)")
    parser.add_argument("--window", type=int, default=30, help="seconds per printed line (30)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from inventory_bronze.spark_session import get_spark

    spark = get_spark("cdc-floor", conf={"spark.scheduler.mode": "FAIR"})
    spark.sparkContext.setLogLevel("ERROR")
    lags = Lags()
    with tempfile.TemporaryDirectory(prefix="cdc-floor-") as tmp:
        root = Path(tmp)
        sizes = {t: max(10, int(rows * args.scale)) for t, (rows, _) in TABLES.items()}
        for table, rows in sizes.items():
            _setup(spark, root, table, rows)
        print(
            f"{len(TABLES)} tables ({', '.join(f'{t} {n:,} rows' for t, n in sizes.items())}), "
            f"{args.rate:,.0f} changes/s, {args.hops} hop(s), {args.warm_up} s warm-up + {args.seconds} s",
            flush=True,
        )
        queries = []
        for table, (_, share) in TABLES.items():
            queries += _start(spark, root, table, sizes[table], args.rate * share, args.hops, lags)
        begin = time.time()
        measured_from = begin + args.warm_up
        cpu_at = None
        next_line = begin + args.window
        end = measured_from + args.seconds
        while time.time() < end:
            time.sleep(1)
            failed = [q.exception() for q in queries if q.exception() is not None]
            if failed:
                print(f"a query failed: {str(failed[0]).splitlines()[0]}", file=sys.stderr)
                return 1
            if cpu_at is None and time.time() >= measured_from:
                cpu_at = (time.time(), _cpu_seconds())
            if time.time() >= next_line:
                with lags.lock:
                    window = [lag for at, lag in lags.rows if next_line - args.window <= at < next_line]
                    batch = [d for at, d in lags.batches if next_line - args.window <= at < next_line]
                print(
                    f"{next_line - begin:5.0f} s: applied {len(window) / args.window:7.0f}/s, lag p50 "
                    f"{_pct(window, 0.5):5.1f} s p95 {_pct(window, 0.95):5.1f} s max "
                    f"{max(window, default=float('nan')):5.1f} s, MERGE batch p50 "
                    f"{statistics.median(batch) if batch else float('nan'):4.1f} s",
                    flush=True,
                )
                next_line += args.window
        cpu_end = (time.time(), _cpu_seconds())
        for query in queries:
            query.stop()
    with lags.lock:
        measured = [lag for at, lag in lags.rows if at >= measured_from]
        batches = [d for at, d in lags.batches if at >= measured_from]
    cores = (cpu_end[1] - cpu_at[1]) / (cpu_end[0] - cpu_at[0]) if cpu_at else float("nan")
    print(
        f"after the warm-up: {len(measured) / args.seconds:,.0f} changes/s applied, lag p50 "
        f"{_pct(measured, 0.5):.1f} s, p95 {_pct(measured, 0.95):.1f} s, max {max(measured, default=0):.1f} s; "
        f"MERGE batches {len(batches)}, p50 {statistics.median(batches) if batches else float('nan'):.1f} s; "
        f"CPU {cores:.2f} cores"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
