"""SCD type 1: the target holds the latest row of each key.

Hidden state (DIR/system/state/<target>/):
    keys/       one row per key ever seen: (keys, __seq, __deleted, __deleted_at) -- the sequence the target
                reflects for the key, and whether that is a delete (a tombstone, GC'd after
                pipelines.cdc.tombstoneGCThresholdInSeconds)
    truncates/  the sequence values of applied truncates (`apply_as_truncates`)

One batch, all derived from the state as it was BEFORE the batch:
    1. events older than (or as old as) what the target reflects for their key, or than the last truncate,
       are dropped;
    2. per key, the event with the highest sequence wins; with ignore_null_updates a NULL takes the last
       non-NULL value of the key's later updates in the batch, else keeps the target's value (unless a
       delete of the key came earlier in the batch: then the row starts afresh);
    3. commits, each idempotent by (flow's app id + suffix, batch id): truncate the target (if the batch
       holds a newer truncate), MERGE the target, record the truncate, MERGE the key state.
A crash between commits is harmless: a rerun of the batch derives the same effects from the unchanged
state; commits already made are skipped by Delta (txnAppId/txnVersion), the rest are made.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, LongType, StructField, StructType

from localdlt.cdc import common as c
from localdlt.graph import CdcSpec
from localdlt.metrics import FlowMetrics

DELETED = "__deleted"
DELETED_AT = "__deleted_at"
ST_SEQ = "__st_seq"


class Scd1:
    def __init__(self, ctx: Any, spec: CdcSpec) -> None:
        self.ctx = ctx
        self.spec = spec
        self.flow = ctx.flow.name
        self.keys = list(spec.keys)
        self.state_path = ctx.storage.state_path(ctx.target.name, "keys")
        self.trunc_path = ctx.storage.state_path(ctx.target.name, "truncates")
        self.threshold_s = c.setting(ctx, c.TOMBSTONE_GC_THRESHOLD, c.DEFAULT_TOMBSTONE_GC_THRESHOLD_S)
        self.gc_every_s = c.setting(ctx, c.TOMBSTONE_GC_FREQUENCY, c.DEFAULT_TOMBSTONE_GC_FREQUENCY_S)
        self._last_gc = 0.0

    # ---------------------------------------------------------------------------------------- set-up
    def prepare(self, source_df: DataFrame) -> None:
        spark = self.ctx.spark
        seq_type = c.sequence_type(self.spec, source_df)
        key_fields = [StructField(k, source_df.schema[k].dataType, True) for k in self.keys]
        c.ensure_table(
            spark,
            self.state_path,
            StructType(
                [
                    *key_fields,
                    StructField(c.SEQ, seq_type, True),
                    StructField(DELETED, BooleanType(), True),
                    StructField(DELETED_AT, LongType(), True),
                ]
            ),
        )
        c.ensure_table(
            spark,
            self.trunc_path,
            StructType([StructField(c.SEQ, seq_type, True), StructField("__at", LongType(), True)]),
        )
        self.collect_tombstones(spark)

    def collect_tombstones(self, spark: Any) -> None:
        """Purge tombstones older than the threshold, at most every tombstoneGCFrequencyInSeconds (expired
        ones are ignored by the batches anyway: this only reclaims space)."""
        marker = Path(self.ctx.storage.state_path(self.ctx.target.name, "tombstone_gc"))
        now = time.time()
        try:
            last = float(marker.read_text())
        except (OSError, ValueError):
            last = 0.0
        self._last_gc = max(last, self._last_gc)
        if now - self._last_gc < self.gc_every_s:
            return
        cutoff = int((now - self.threshold_s) * 1000)
        DeltaTable.forPath(spark, self.state_path).delete(
            F.col(DELETED) & (F.col(DELETED_AT) < F.lit(cutoff))
        )
        self._last_gc = now
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(now))

    # ----------------------------------------------------------------------------------------- batch
    def apply(self, batch_df: DataFrame, batch_id: int) -> FlowMetrics:
        spark = batch_df.sparkSession
        if self.ctx.continuous and time.time() - self._last_gc >= self.gc_every_s:
            self.collect_tombstones(spark)
        events, values = c.prepare_events(self.spec, batch_df, self.flow)
        events = events.persist()
        cached = [events]
        try:
            return self._apply(spark, events, values, batch_id, cached)
        finally:
            for df in cached:
                df.unpersist()

    def _apply(
        self, spark: Any, events: DataFrame, values: list[str], batch_id: int, cached: list[DataFrame]
    ) -> FlowMetrics:
        spec, keys = self.spec, self.keys
        has_truncates = spec.apply_as_truncates is not None
        extra = [F.max(F.when(c.col(c.OP) == "T", c.col(c.SEQ))).alias("__t_batch")] if has_truncates else []
        stats = c.check_nulls(spec, events, self.flow, extra)
        inul = c.ignore_null_columns(spec, values, self.flow)
        now_ms = int(time.time() * 1000)
        # truncates: the newest applied one (state) and the batch's newest
        t_prev = self._last_truncate(spark) if has_truncates else None
        t_batch = stats["__t_batch"] if has_truncates and stats is not None else None
        new_truncate = t_batch is not None and (t_prev is None or t_batch > t_prev)
        t_max = t_batch if new_truncate else t_prev

        # state before the batch: live keys and unexpired tombstones
        cutoff = now_ms - int(self.threshold_s * 1000)
        state = (
            spark.read.format("delta")
            .load(self.state_path)
            .where(~F.col(DELETED) | (F.col(DELETED_AT) >= F.lit(cutoff)))
            .select(*[c.col(k) for k in keys], c.col(c.SEQ).alias(ST_SEQ))
        )
        live = events.where(c.col(c.OP) != "T") if has_truncates else events
        if t_max is not None:
            seq_type = events.schema[c.SEQ].dataType
            bound = spark.createDataFrame([(t_max,)], StructType([StructField("__t_max", seq_type)]))
            live = live.crossJoin(F.broadcast(bound)).where(c.col(c.SEQ) > F.col("__t_max")).drop("__t_max")
        live = live.join(state, keys, "left").where(F.col(ST_SEQ).isNull() | (c.col(c.SEQ) > F.col(ST_SEQ)))
        by_key = Window.partitionBy(*[c.col(k) for k in keys])
        live = live.withColumn("__last_del", F.max(F.when(c.col(c.OP) == "D", c.col(c.SEQ))).over(by_key))
        live = live.withColumn("__ord", c.order_struct())
        after_delete = F.col("__last_del").isNull() | (c.col(c.SEQ) > F.col("__last_del"))
        plain = [v for v in values if v not in inul]
        aggs = [
            F.max_by(
                F.struct(c.col(c.OP).alias(c.OP), c.col(c.SEQ).alias(c.SEQ), *[c.col(v) for v in plain]),
                F.col("__ord"),
            ).alias("__w"),
            F.max(F.col("__last_del")).isNotNull().alias("__reset"),
        ]
        for v in inul:
            usable = c.col(v).isNotNull() & (c.col(c.OP) == "U") & after_delete
            aggs.append(F.max_by(c.col(v), F.when(usable, F.col("__ord"))).alias(v))
        effects = live.groupBy(*[c.col(k) for k in keys]).agg(*aggs)
        effects = effects.select(
            *[c.col(k) for k in keys],
            F.col("__w").getField(c.OP).alias(c.OP),
            F.col("__w").getField(c.SEQ).alias(c.SEQ),
            F.col("__reset"),
            *[(F.col("__w").getField(v) if v in plain else c.col(v)).alias(v) for v in values],
        ).persist()
        cached.append(effects)
        n_effects = effects.count()

        metrics = FlowMetrics(num_upserted_rows=0, num_deleted_rows=0)
        # 1. truncate the target
        if new_truncate:
            with self.ctx.idempotent_dml(spark, batch_id, ":truncate"):
                res = spark.sql(f"DELETE FROM delta.{c.quote(self.ctx.target_path)}")
                truncated = c.merge_counts(res)["num_affected_rows"]
            metrics.num_deleted_rows += truncated
            metrics.num_output_rows += truncated
        # 2. the target
        if n_effects:
            counts = self._merge_target(spark, effects, keys, values, inul, batch_id)
            metrics.num_upserted_rows += counts["num_inserted_rows"] + counts["num_updated_rows"]
            metrics.num_deleted_rows += counts["num_deleted_rows"]
            metrics.num_output_rows += counts["num_affected_rows"]
        c.crash_point("after-target", batch_id)
        # 3. the truncate, then the keys' sequences, in the hidden state
        if new_truncate:
            seq_type = events.schema[c.SEQ].dataType
            schema = StructType([StructField(c.SEQ, seq_type), StructField("__at", LongType())])
            (
                spark.createDataFrame([(t_batch, now_ms)], schema)
                .write.format("delta")
                .mode("append")
                .options(**c.txn_options(self.ctx.app_id + ":truncates", batch_id))
                .save(self.trunc_path)
            )
        if n_effects:
            is_delete = c.col(c.OP) == "D"
            src = effects.select(
                *[c.col(k) for k in keys],
                c.col(c.SEQ),
                is_delete.alias(DELETED),
                F.when(is_delete, F.lit(now_ms)).cast("long").alias(DELETED_AT),
            )
            with self.ctx.idempotent_dml(spark, batch_id, ":state"):
                (
                    DeltaTable.forPath(spark, self.state_path)
                    .alias("t")
                    .merge(src.alias("s"), _on(keys))
                    .whenMatchedUpdateAll()
                    .whenNotMatchedInsertAll()
                    .execute()
                )
        return metrics

    def _last_truncate(self, spark: Any) -> Any:
        row = spark.read.format("delta").load(self.trunc_path).agg(F.max(c.SEQ).alias("t")).first()
        return row["t"] if row is not None else None

    def _merge_target(
        self,
        spark: Any,
        effects: DataFrame,
        keys: list[str],
        values: list[str],
        inul: list[str],
        batch_id: int,
    ) -> dict[str, int]:
        q = c.quote
        update = {}
        for v in values:
            if v in inul:
                update[q(v)] = f"CASE WHEN s.__reset THEN s.{q(v)} ELSE coalesce(s.{q(v)}, t.{q(v)}) END"
            else:
                update[q(v)] = f"s.{q(v)}"
        insert = {q(k): f"s.{q(k)}" for k in [*keys, *values]}
        with self.ctx.idempotent_dml(spark, batch_id, ":target"):
            result = (
                DeltaTable.forPath(spark, self.ctx.target_path)
                .alias("t")
                .merge(effects.alias("s"), _on(keys))
                .whenMatchedDelete(condition="s.__op = 'D'")
                .whenMatchedUpdate(condition="s.__op = 'U'", set=update)
                .whenNotMatchedInsert(condition="s.__op = 'U'", values=insert)
                .execute()
            )
        return c.merge_counts(result)


def _on(keys: list[str]) -> str:
    return " AND ".join(f"t.{c.quote(k)} = s.{c.quote(k)}" for k in keys)
