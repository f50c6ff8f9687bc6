"""Benchmark (not a timed test): apply the same 100 k mixed changes (updates, inserts, deletes) to an SCD
type 1 AUTO CDC target of 2 M rows and of 200 k rows, through the runtime's own engine
(localdlt.cdc.run_cdc_flow), and print changes/s and the ratio of the two times.

    .venv/bin/python bench/bench_cdc.py [--large 2000000] [--small 200000] [--changes 100000] [--no-dv]

Goal: the 10x larger target costs at most 1.5x more (cost follows changes, not table size). --no-dv
turns deletion vectors off on the target and state, to show what they bring.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from pyspark.sql import functions as F

from inventory_bronze.spark_session import get_spark
from localdlt import cdc
from localdlt.cdc import scd1
from localdlt.flowcontext import FlowContext
from localdlt.graph import CdcSpec, Dataset, Flow, PipelineGraph
from localdlt.storage import Storage


class _Reader:
    def __init__(self, spark, path):  # noqa: ANN001
        self.spark, self.path, self.applied = spark, path, []

    def read(self, name):  # noqa: ANN001
        return self.spark.read.format("delta").load(self.path)

    def read_stream(self, name):  # noqa: ANN001
        return self.spark.readStream.format("delta").load(self.path)


def build(spark, root: Path, rows: int, changes: int, dv: bool) -> FlowContext:  # noqa: ANN001
    storage = Storage.at(root / "storage")
    graph = PipelineGraph()
    target = graph.add_dataset(Dataset(name="target", kind="streaming_table"))
    spec = CdcSpec(
        source="changes",
        keys=["id"],
        sequence_by="seq",
        apply_as_deletes="op = 'D'",
        except_column_list=["op"],
    )
    flow = graph.add_flow(Flow(name="apply", target="target", kind="cdc", cdc=spec))
    target_path = storage.table_path("target")
    dv_opt = {"delta.enableDeletionVectors": "true" if dv else "false"}
    files = max(4, rows // 100_000)
    base = spark.range(rows).select(
        F.col("id"),
        F.concat(F.lit("name-"), F.col("id").cast("string")).alias("name"),
        (F.col("id") % 997).cast("double").alias("amount"),
        F.lit(1).cast("long").alias("seq"),
    )
    # rows land in key order (range), so each file covers a narrow id range: Delta's per-file min/max
    # statistics on the key let MERGE skip files
    base.repartitionByRange(files, "id").write.format("delta").options(**dv_opt).save(target_path)
    state_path = storage.state_path("target", "keys")
    base.select(
        "id", "seq", F.lit(False).alias("__deleted"), F.lit(None).cast("long").alias("__deleted_at")
    ).withColumnRenamed("seq", "__seq").repartitionByRange(files, "id").write.format("delta").options(
        **dv_opt
    ).save(state_path)
    # compact as the runtime leaves it (one entry per key, no tombstone): no compaction in the measured run
    scd1.save_compaction(
        state_path, {"rows": rows, "appends": 0, "appended_rows": 0, "oldest_tombstone_ms": None}
    )
    # the changes: 70 % updates and 20 % deletes of random existing keys, 10 % inserts of new keys
    n_upd, n_del = int(changes * 0.7), int(changes * 0.2)
    n_ins = changes - n_upd - n_del
    rnd = F.rand(42)
    existing = (
        spark.range(rows)
        .select("id", rnd.alias("r"))
        .orderBy("r")
        .limit(n_upd + n_del)
        .select("id", F.row_number().over(__import__("pyspark.sql").sql.Window.orderBy("id")).alias("i"))
    )
    upd = existing.where(F.col("i") <= n_upd).select(
        "id", F.lit("changed").alias("name"), F.lit(1.5).alias("amount"), F.lit("U").alias("op")
    )
    dele = existing.where(F.col("i") > n_upd).select(
        "id",
        F.lit(None).cast("string").alias("name"),
        F.lit(None).cast("double").alias("amount"),
        F.lit("D").alias("op"),
    )
    ins = spark.range(rows, rows + n_ins).select(
        "id", F.lit("new").alias("name"), F.lit(2.5).alias("amount"), F.lit("U").alias("op")
    )
    src_path = str(root / "changes")
    upd.unionByName(dele).unionByName(ins).withColumn("seq", F.lit(2).cast("long")).select(
        "id", "name", "amount", "op", "seq"
    ).repartition(4).write.format("delta").save(src_path)
    return FlowContext(
        spark=spark,
        storage=storage,
        graph=graph,
        pipeline_id="bench",
        update_id=uuid.uuid4().hex,
        flow=flow,
        target=target,
        target_path=target_path,
        reader=_Reader(spark, src_path),
    )


def run(spark, rows: int, changes: int, dv: bool) -> float:  # noqa: ANN001
    root = Path(tempfile.mkdtemp(prefix=f"bench-cdc-{rows}-"))
    try:
        ctx = build(spark, root, rows, changes, dv)
        t0 = time.perf_counter()
        cdc.run_cdc_flow(ctx)
        elapsed = time.perf_counter() - t0
        m = ctx.metrics
        count = spark.read.format("delta").load(ctx.target_path).count()
        expected = rows - int(changes * 0.2) + (changes - int(changes * 0.7) - int(changes * 0.2))
        ok = "ok" if count == expected else f"MISMATCH (expected {expected})"
        print(
            f"target {rows:>9,} rows: {changes:,} changes in {elapsed:6.1f} s = {changes / elapsed:8,.0f} changes/s"
            f"  (upserted {m.num_upserted_rows:,}, deleted {m.num_deleted_rows:,}; target now {count:,} rows {ok})",
            flush=True,
        )
        return elapsed
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--large", type=int, default=2_000_000)
    p.add_argument("--small", type=int, default=200_000)
    p.add_argument("--changes", type=int, default=100_000)
    p.add_argument("--no-dv", action="store_true", help="deletion vectors off (for comparison)")
    args = p.parse_args(argv)
    spark = get_spark("bench-cdc", {"spark.sql.shuffle.partitions": "8"})
    dv = not args.no_dv
    print(f"deletion vectors: {'on' if dv else 'off'}", flush=True)
    run(spark, 20_000, 2_000, dv)  # warm-up (JIT, Delta log code paths)
    small = run(spark, args.small, args.changes, dv)
    large = run(spark, args.large, args.changes, dv)
    print(f"ratio large/small: {large / small:.2f}x (goal <= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
