"""The floor under an incremental bronze update: only the Delta Lake writes it cannot do without.

    .venv/bin/python bench/delta_floor.py [--rounds 4] [--workers 2] [--scale 0.01]

One warm local Spark session with the runtime's settings (localdlt.session.get_spark), tables shaped like
the demo's at `--scale` (ten bronze targets, the six CDC tables' change archives, quarantines, an event
log), and per round the writes one update after ~1 000 source changes must make whatever the runtime's
design: per CDC table an append of its changes, a quarantine append and one MERGE of the changed keys into
the target (deletion vectors on, as the bronze tables have); per snapshot table the target rewritten (its
load metadata changes every row) and a quarantine append; two event-log commits. Nothing else: no source
read, no expectations, no CDC bookkeeping, no streaming checkpoints. Rounds run `--workers` at a time (the
runtime's default is 2); the first is a warm-up and is not counted.

It prints each round's wall time and the median, the count of commits and MERGEs, and the same for one
MERGE and one append alone: what the issue's per-update goals have to fit above.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

# rows per table at scale 1 (the demo's generator, scale 0.01 = 1/100 of these) and changes per update
CDC_TABLES = {  # table: (rows at scale 1, changes in a demo update after ~1 000 source changes)
    "inventory": (200_000, 252),
    "orders": (500_000, 218),
    "order_details": (2_000_000, 227),
    "shipments": (400_000, 48),
    "returns": (100_000, 6),
    "stock_levels": (200_000, 240),
}
# what --no-dv and --merge-as choose (set once in main)
DV = "true"
MERGE_AS = "merge"
SNAPSHOT_TABLES = {"products": 10_000, "suppliers": 1_000, "warehouses": 300, "customers": 100_000}


def _rows(spark: SparkSession, n: int, offset: int = 0, round_no: int = 0) -> DataFrame:
    return (
        spark.range(offset, offset + n)
        .withColumnRenamed("id", "k")
        .select(
            "k",
            (F.col("k") * 7 + round_no).alias("v1"),
            F.concat(F.lit("name-"), F.col("k").cast("string"), F.lit(str(round_no))).alias("v2"),
            F.current_timestamp().alias("_ingested_at"),
            F.lit("2026-12-07").cast("date").alias("_change_date"),
        )
    )


def _setup(spark: SparkSession, root: Path, scale: float) -> None:
    for table, (rows, _) in CDC_TABLES.items():
        n = max(3, int(rows * scale))
        (
            _rows(spark, n)
            .drop("_change_date")
            .write.format("delta")
            .option("delta.enableDeletionVectors", DV)
            .save(str(root / f"bz_{table}"))
        )
        _rows(spark, n).write.format("delta").partitionBy("_change_date").save(
            str(root / f"bz_{table}_changes")
        )
        _rows(spark, 0).write.format("delta").save(str(root / f"bz_{table}_quarantine"))
    for table, rows in SNAPSHOT_TABLES.items():
        n = max(3, int(rows * scale))
        _rows(spark, n).drop("_change_date").write.format("delta").save(str(root / f"bz_{table}"))
        _rows(spark, 0).write.format("delta").save(str(root / f"bz_{table}_quarantine"))
    for pipeline in ("batch", "cdc"):
        spark.range(1).withColumnRenamed("id", "event").write.format("delta").save(
            str(root / f"events_{pipeline}")
        )


def _merge(spark: SparkSession, path: str, changes: DataFrame) -> None:
    if (
        MERGE_AS == "overwrite"
    ):  # the table's new contents in one rewrite: its rows not changed, then the changes
        current = spark.read.format("delta").load(path)
        kept = current.join(changes.select("k"), "k", "left_anti")
        kept.unionByName(changes).write.format("delta").mode("overwrite").option("replaceWhere", "true").save(
            path
        )
        return
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(changes.alias("s"), "t.k = s.k")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )


def _cdc_table(spark: SparkSession, root: Path, table: str, scale: float, round_no: int) -> None:
    rows, changes = CDC_TABLES[table]
    n = max(3, int(rows * scale))
    batch = _rows(spark, changes, offset=n - changes // 2, round_no=round_no)  # half updates, half inserts
    batch.write.format("delta").mode("append").save(str(root / f"bz_{table}_changes"))
    batch.limit(2).drop("_change_date").write.format("delta").mode("append").save(
        str(root / f"bz_{table}_quarantine")
    )
    _merge(spark, str(root / f"bz_{table}"), batch.drop("_change_date"))


def _snapshot_table(spark: SparkSession, root: Path, table: str, scale: float, round_no: int) -> None:
    n = max(3, int(SNAPSHOT_TABLES[table] * scale))
    rows = _rows(spark, n, round_no=round_no).drop("_change_date")
    rows.write.format("delta").mode("overwrite").option("replaceWhere", "true").save(
        str(root / f"bz_{table}")
    )
    rows.limit(2).write.format("delta").mode("append").save(str(root / f"bz_{table}_quarantine"))


def _round(spark: SparkSession, root: Path, scale: float, round_no: int, workers: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = [pool.submit(_cdc_table, spark, root, t, scale, round_no) for t in CDC_TABLES]
        jobs += [pool.submit(_snapshot_table, spark, root, t, scale, round_no) for t in SNAPSHOT_TABLES]
        for job in jobs:
            job.result()
    for pipeline in ("batch", "cdc"):
        spark.range(1).withColumnRenamed("id", "event").write.format("delta").mode("append").save(
            str(root / f"events_{pipeline}")
        )
    return time.perf_counter() - started


def _single(spark: SparkSession, root: Path, scale: float, round_no: int) -> tuple[float, float]:
    rows, changes = CDC_TABLES["orders"]
    batch = _rows(spark, changes, offset=max(3, int(rows * scale)) - changes // 2, round_no=round_no)
    started = time.perf_counter()
    _merge(spark, str(root / "bz_orders"), batch.drop("_change_date"))
    merged = time.perf_counter()
    batch.write.format("delta").mode("append").save(str(root / "bz_orders_changes"))
    return merged - started, time.perf_counter() - merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=4, help="rounds, the first a warm-up (4)")
    parser.add_argument("--workers", type=int, default=2, help="tables written at the same time (2)")
    parser.add_argument("--scale", type=float, default=0.01, help="table sizes, as the demo's --scale (0.01)")
    parser.add_argument(
        "--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting to try"
    )
    parser.add_argument(
        "--merge-as", choices=["merge", "overwrite"], default="merge", help="how changes reach a target"
    )
    parser.add_argument("--no-dv", action="store_true", help="targets without deletion vectors")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from inventory_bronze.spark_session import get_spark

    spark = get_spark("delta-floor", conf=dict(c.split("=", 1) for c in args.conf))
    global DV, MERGE_AS
    MERGE_AS = args.merge_as
    DV = "false" if args.no_dv else "true"
    with tempfile.TemporaryDirectory(prefix="delta-floor-") as tmp:
        root = Path(tmp)
        print(f"setting up {len(CDC_TABLES) * 3 + len(SNAPSHOT_TABLES) * 2 + 2} tables at scale {args.scale}")
        started = time.perf_counter()
        _setup(spark, root, args.scale)
        print(f"set-up (the tables created and loaded, one at a time): {time.perf_counter() - started:.1f} s")
        walls = []
        for round_no in range(1, args.rounds + 1):
            wall = _round(spark, root, args.scale, round_no, args.workers)
            print(f"round {round_no}: {wall:.1f} s" + (" (warm-up)" if round_no == 1 else ""), flush=True)
            if round_no > 1:
                walls.append(wall)
        singles = [_single(spark, root, args.scale, 100 + i) for i in range(3)]
    commits = len(CDC_TABLES) * 3 + len(SNAPSHOT_TABLES) * 2 + 2
    print(
        f"one update's Delta writes ({commits} commits, {len(CDC_TABLES)} of them MERGEs, {args.workers} at a "
        f"time): median {statistics.median(walls):.1f} s (min {min(walls):.1f}, max {max(walls):.1f})"
    )
    print(
        f"one MERGE of {CDC_TABLES['orders'][1]} rows alone: median "
        f"{statistics.median(s[0] for s in singles):.2f} s; one append: "
        f"{statistics.median(s[1] for s in singles):.2f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
