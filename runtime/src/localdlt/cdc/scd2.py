"""SCD type 2: the target keeps every version of a key, bounded by __START_AT / __END_AT.

Definition used (Databricks' documented rules, made exact): the versions of a key are what you get by
applying ALL its events in sequence order to an empty history --
    - an upsert with no current version opens one (__START_AT = its sequence);
    - an upsert that changes a tracked column closes the current version (__END_AT = its sequence) and
      opens a new one; one that changes only untracked columns updates the current version in place;
    - a delete closes the current version (__END_AT = its sequence);
    - with ignore_null_updates, an update's NULL keeps the current version's value;
    - a version that would last zero time (two events of a key at one sequence value) is dropped.
So a late event lands at its place in history, whatever batch it arrives in.

Hidden state: DIR/system/state/<target>/events -- every event applied (keys, values, __seq, __op, __tb).
One batch: the affected keys' histories are rebuilt from (state events + batch events) and diffed
against the histories from the state alone (= what the target holds for those keys); the difference is
MERGEd into the target on (keys, __START_AT), then the batch's events are appended to the state. Both
commits are idempotent by (app id + suffix, batch id), and the target commit comes first: after a crash
between them the rerun computes the same difference from the unchanged state and Delta skips it.
"""

from __future__ import annotations

from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

import localdlt.cdc.common as c
from localdlt.graph import CdcSpec
from localdlt.metrics import FlowMetrics


class Scd2:
    def __init__(self, ctx: Any, spec: CdcSpec) -> None:
        self.ctx = ctx
        self.spec = spec
        self.flow = ctx.flow.name
        self.keys = list(spec.keys)
        self.events_path = ctx.storage.state_path(ctx.target.name, "events")

    def prepare(self, source_df: DataFrame) -> None:
        events, _ = c.prepare_events(self.spec, source_df, self.flow)
        schema = StructType([f for f in events.schema.fields])
        c.ensure_table(self.ctx.spark, self.events_path, schema)
        self.ctx.evolve_target(schema, path=self.events_path)  # the source added or widened columns

    def apply(self, batch_df: DataFrame, batch_id: int) -> FlowMetrics:
        spark = batch_df.sparkSession
        spec, keys = self.spec, self.keys
        events, values = c.prepare_events(spec, batch_df, self.flow)
        events = events.dropDuplicates().persist()
        cached: list[DataFrame] = [events]
        try:
            c.check_nulls(spec, events, self.flow)
            tracked = c.tracked_columns(
                spec.track_history_column_list, spec.track_history_except_column_list, values, self.flow
            )
            inul = c.ignore_null_columns(spec, values, self.flow)
            touched = events.select(*[c.col(k) for k in keys]).distinct()
            old_events = (
                spark.read.format("delta")
                .load(self.events_path)
                .join(F.broadcast(touched), keys, "left_semi")
            ).persist()
            cached.append(old_events)
            all_events = old_events.unionByName(events).dropDuplicates()
            old = history(old_events, keys, values, tracked, inul)
            new = history(all_events, keys, values, tracked, inul)
            diff = history_diff(old, new, keys, values).persist()
            cached.append(diff)
            counts = {
                r["__action"]: r["n"] for r in diff.groupBy("__action").agg(F.count("*").alias("n")).collect()
            }
            current = F.col(c.END_AT).isNull()
            closed = (
                old.where(current)
                .select(*[c.col(k) for k in keys])
                .join(new.where(current).select(*[c.col(k) for k in keys]), keys, "left_anti")
                .count()
            )
            if counts:
                self._merge_target(spark, diff, keys, values, batch_id)
            c.crash_point("after-target", batch_id)
            (
                events.write.format("delta")
                .mode("append")
                .options(**c.txn_options(self.ctx.app_id + ":events", batch_id))
                .save(self.events_path)
            )
            n_ins, n_upd, n_del = counts.get("I", 0), counts.get("U", 0), counts.get("D", 0)
            return FlowMetrics(
                num_output_rows=n_ins + n_upd + n_del,
                num_upserted_rows=n_ins + n_upd,
                num_deleted_rows=closed,
            )
        finally:
            for df in cached:
                df.unpersist()

    def _merge_target(
        self, spark: Any, diff: DataFrame, keys: list[str], values: list[str], batch_id: int
    ) -> None:
        q = c.quote
        on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in [*keys, c.START_AT])
        update = {q(v): f"s.{q(v)}" for v in [*values, c.END_AT]}
        insert = {q(v): f"s.{q(v)}" for v in [*keys, *values, c.START_AT, c.END_AT]}
        with self.ctx.idempotent_dml(spark, batch_id, ":target"):
            (
                DeltaTable.forPath(spark, self.ctx.target_path)
                .alias("t")
                .merge(diff.alias("s"), on)
                .whenMatchedDelete(condition="s.__action = 'D'")
                .whenMatchedUpdate(condition="s.__action = 'U'", set=update)
                .whenNotMatchedInsert(condition="s.__action = 'I'", values=insert)
                .execute()
            )


def history(
    events: DataFrame, keys: list[str], values: list[str], tracked: list[str], ignore_null: list[str]
) -> DataFrame:
    """The versions (keys, values, __START_AT, __END_AT) that the events of each key make."""
    kcols = [c.col(k) for k in keys]
    is_u = c.col(c.OP) == "U"
    e = events.withColumn("__o", c.order_struct())
    by_key = Window.partitionBy(*kcols).orderBy("__o")
    before = by_key.rowsBetween(Window.unboundedPreceding, -1)
    upto = by_key.rowsBetween(Window.unboundedPreceding, 0)
    after = by_key.rowsBetween(1, Window.unboundedFollowing)
    # segment = number of deletes before the event: a segment's upserts build one life of the key
    e = e.withColumn(
        "__seg", F.coalesce(F.sum(F.when(c.col(c.OP) == "D", 1).otherwise(0)).over(before), F.lit(0))
    )
    by_seg = Window.partitionBy(*kcols, F.col("__seg")).orderBy("__o")
    for v in ignore_null:
        e = e.withColumn(
            v,
            F.last(F.when(is_u, c.col(v)), ignorenulls=True).over(
                by_seg.rowsBetween(Window.unboundedPreceding, 0)
            ),
        )
    changed: Column = F.lit(False)
    if tracked:
        prev = F.lag(F.struct(*[c.col(t).alias(f"_{i}") for i, t in enumerate(tracked)]), 1).over(by_seg)
        e = e.withColumn("__prev", prev)
        for i, t in enumerate(tracked):
            changed = changed | ~F.col("__prev").getField(f"_{i}").eqNullSafe(c.col(t))
    first = F.row_number().over(by_seg) == 1
    e = e.withColumn("__start", is_u & (first | changed))
    boundary = F.col("__start") | (c.col(c.OP) == "D")
    e = e.withColumn("__end", F.first(F.when(boundary, c.col(c.SEQ)), ignorenulls=True).over(after))
    e = e.withColumn("__vid", F.sum(F.when(F.col("__start"), 1).otherwise(0)).over(upto))
    untracked = [v for v in values if v not in tracked]
    versions = (
        e.where(is_u)
        .groupBy(*kcols, F.col("__vid"))
        .agg(
            F.min_by(c.col(c.SEQ), F.col("__o")).alias(c.START_AT),
            F.min_by(F.col("__end"), F.col("__o")).alias(c.END_AT),
            *[F.min_by(c.col(v), F.col("__o")).alias(v) for v in tracked],
            *[F.max_by(c.col(v), F.col("__o")).alias(v) for v in untracked],
        )
        .where(F.col(c.END_AT).isNull() | (F.col(c.END_AT) != F.col(c.START_AT)))
    )
    return versions.select(*kcols, *[c.col(v) for v in values], c.col(c.START_AT), c.col(c.END_AT))


def history_diff(old: DataFrame, new: DataFrame, keys: list[str], values: list[str]) -> DataFrame:
    """Rows to insert (I), update (U) or delete (D) in the target, matched on (keys, __START_AT)."""
    match = [*keys, c.START_AT]
    rest = [*values, c.END_AT]
    o = old.select(
        *[c.col(m) for m in match],
        *[c.col(r).alias(f"__old_{i}") for i, r in enumerate(rest)],
        F.lit(True).alias("__in_old"),
    )
    n = new.withColumn("__in_new", F.lit(True))
    joined = n.join(o, match, "full_outer")
    same: Column = F.lit(True)
    for i, r in enumerate(rest):
        same = same & c.col(r).eqNullSafe(F.col(f"__old_{i}"))
    action = (
        F.when(F.col("__in_old").isNull(), F.lit("I"))
        .when(F.col("__in_new").isNull(), F.lit("D"))
        .when(~same, F.lit("U"))
    )
    out = joined.withColumn("__action", action).where(F.col("__action").isNotNull())
    return out.select(*[c.col(m) for m in match], *[c.col(r) for r in rest], F.col("__action"))
