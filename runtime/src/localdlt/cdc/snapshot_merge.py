"""AUTO CDC FROM SNAPSHOT applied with a Delta MERGE: the way for a target whose columns the snapshot does
not cover exactly (a source column dropped, kept in the target as a MERGE keeps it). A target the snapshot
covers is rewritten from one comparison instead (`localdlt.cdc.snapshot`)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

import localdlt.cdc.common as c
from localdlt.cdc.snapshot_versions import version_lit
from localdlt.metrics import FlowMetrics


def merge_scd1(
    spark: SparkSession,
    target_path: str,
    snap: DataFrame,
    keys: list[str],
    idempotent: AbstractContextManager[Any],
) -> FlowMetrics:
    """SCD type 1: the snapshot's new keys inserted, changed rows updated, missing keys deleted."""
    q = c.quote
    values = [x for x in snap.columns if x not in keys]
    on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in keys)
    changed = " OR ".join(f"NOT (t.{q(v)} <=> s.{q(v)})" for v in values) or "false"
    with idempotent:
        result = (
            DeltaTable.forPath(spark, target_path)
            .alias("t")
            .merge(snap.alias("s"), on)
            .whenMatchedUpdate(condition=changed, set={q(v): f"s.{q(v)}" for v in values})
            .whenNotMatchedInsert(values={q(x): f"s.{q(x)}" for x in snap.columns})
            .whenNotMatchedBySourceDelete()
            .execute()
        )
    counts = c.merge_counts(result)
    return FlowMetrics(
        num_output_rows=counts["num_affected_rows"],
        num_upserted_rows=counts["num_inserted_rows"] + counts["num_updated_rows"],
        num_deleted_rows=counts["num_deleted_rows"],
    )


def merge_scd2(
    spark: SparkSession,
    target_path: str,
    snap: DataFrame,
    keys: list[str],
    tracked: list[str],
    version: Any,
    idempotent: AbstractContextManager[Any],
) -> FlowMetrics:
    """SCD type 2: versions opened for new keys and for changes of `tracked` columns, closed for changed
    and missing keys at `version`; untracked columns updated in place."""
    q = c.quote
    values = [x for x in snap.columns if x not in keys]
    untracked = [v for v in values if v not in tracked]
    current = (
        spark.read.format("delta")
        .load(target_path)
        .where(F.col(c.END_AT).isNull())
        .select(*[c.col(k) for k in keys], *[c.col(v).alias(f"__cur_{i}") for i, v in enumerate(values)])
        .withColumn("__in_cur", F.lit(True))
    )
    j = snap.withColumn("__in_snap", F.lit(True)).join(current, keys, "full_outer")

    def same(cols: list[str]) -> Any:
        out = F.lit(True)
        for v in cols:
            out = out & c.col(v).eqNullSafe(F.col(f"__cur_{values.index(v)}"))
        return out

    both = F.col("__in_snap").isNotNull() & F.col("__in_cur").isNotNull()
    j = j.withColumn(
        "__kind",
        F.when(F.col("__in_cur").isNull(), F.lit("new"))
        .when(F.col("__in_snap").isNull(), F.lit("gone"))
        .when(both & ~same(tracked), F.lit("changed"))
        .when(both & ~same(untracked), F.lit("inplace")),
    ).where(F.col("__kind").isNotNull())
    base = [*[c.col(k) for k in keys], *[c.col(v) for v in values]]
    base.append(F.col("__kind"))
    src = (
        j.where(F.col("__kind").isin("new", "changed"))
        .select(*base, F.lit("insert").alias("__a"))
        .unionByName(
            j.where(F.col("__kind").isin("gone", "changed")).select(*base, F.lit("close").alias("__a"))
        )
        .unionByName(j.where(F.col("__kind") == "inplace").select(*base, F.lit("inplace").alias("__a")))
        .withColumn("__v", version_lit(version))
    ).persist()
    try:
        # the kinds from the cached rows (a changed key has an insert and a close row: count one)
        kinds = {
            r["__kind"]: r["n"]
            for r in src.where((F.col("__a") != "close") | (F.col("__kind") == "gone"))
            .groupBy("__kind")
            .agg(F.count("*").alias("n"))
            .collect()
        }
        on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in keys)
        on += f" AND t.{q(c.END_AT)} IS NULL AND s.__a <> 'insert'"
        insert = {q(x): f"s.{q(x)}" for x in [*keys, *values]}
        insert[q(c.START_AT)] = "s.__v"
        insert[q(c.END_AT)] = (
            "CAST(NULL AS " + snap.select(version_lit(version)).schema[0].dataType.simpleString() + ")"
        )
        with idempotent:
            result = (
                DeltaTable.forPath(spark, target_path)
                .alias("t")
                .merge(src.alias("s"), on)
                .whenMatchedUpdate(condition="s.__a = 'close'", set={q(c.END_AT): "s.__v"})
                .whenMatchedUpdate(
                    condition="s.__a = 'inplace'",
                    set={q(v): f"s.{q(v)}" for v in untracked} or {q(c.END_AT): "t." + q(c.END_AT)},
                )
                .whenNotMatchedInsert(condition="s.__a = 'insert'", values=insert)
                .execute()
            )
    finally:
        src.unpersist()
    counts = c.merge_counts(result)
    return FlowMetrics(
        num_output_rows=counts["num_affected_rows"],
        num_upserted_rows=kinds.get("new", 0) + kinds.get("changed", 0) + kinds.get("inplace", 0),
        num_deleted_rows=kinds.get("gone", 0),
    )
