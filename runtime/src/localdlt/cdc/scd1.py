"""SCD type 1: the target holds the latest row of each key.

Hidden state (DIR/system/state/<target>/):
    keys/       per key ever seen: (keys, __seq, __deleted, __deleted_at) -- the sequence the target
                reflects for the key, and whether that is a delete (a tombstone, GC'd after
                pipelines.cdc.tombstoneGCThresholdInSeconds). Append-only between compactions: each batch
                appends its keys' new entries (one write, where a MERGE made two passes), a key's entry is
                its newest (highest __seq), and a compaction rewrites the table to one entry per key,
                dropping expired tombstones (when the appends since the last one reach the rows it kept, or
                COMPACT_AFTER_APPENDS of them, and every tombstoneGCFrequencyInSeconds); keys.compaction
                tells when it last ran
    truncates/  the sequence values of applied truncates (`apply_as_truncates`); truncates.none marks
                that it holds none yet (then a batch does not read it)

One batch, all derived from the state as it was BEFORE the batch:
    1. events older than (or as old as) what the target reflects for their key, or than the last truncate,
       are dropped;
    2. per key, the event with the highest sequence wins; with ignore_null_updates a NULL takes the last
       non-NULL value of the key's later updates in the batch, else keeps the target's value (unless a
       delete of the key came earlier in the batch: then the row starts afresh);
    3. commits, each idempotent by (flow's app id + suffix, batch id): truncate the target (if the batch
       holds a newer truncate), MERGE the target, record the truncate, append to the key state.
A crash between commits is harmless: a rerun of the batch derives the same effects from the unchanged
state; commits already made are skipped by Delta (txnAppId/txnVersion), the rest are made.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, LongType, StructField, StructType

import localdlt.cdc.common as c
from localdlt.graph import CdcSpec
from localdlt.metrics import FlowMetrics
from localdlt.storage import write_json

DELETED = "__deleted"
DELETED_AT = "__deleted_at"
ST_SEQ = "__st_seq"
#: the key state is compacted once this many batches appended to it (or as many rows as it kept)
COMPACT_AFTER_APPENDS = 50
_COMPACTED = {"rows": 0, "appends": 0, "appended_rows": 0}
COMPACTION_SUFFIX = ".compaction"


def save_compaction(state_path: str, state: dict[str, Any]) -> None:
    """Record the key state's compaction bookkeeping (see Scd1._compaction), atomically. A key state
    written by other means (one entry per key) is marked compact with
    `{"rows": n, "appends": 0, "appended_rows": 0, "oldest_tombstone_ms": None}`."""
    write_json(Path(state_path + COMPACTION_SUFFIX), state)


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
        if not c.delta_exists(spark, self.state_path):
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
            # empty: its first append is compact already (one entry per key)
            self._save_compaction({**_COMPACTED, "oldest_tombstone_ms": None, "empty": True})
        if not c.delta_exists(spark, self.trunc_path):
            c.ensure_table(
                spark,
                self.trunc_path,
                StructType([StructField(c.SEQ, seq_type, True), StructField("__at", LongType(), True)]),
            )
            self.no_truncates_marker.touch()  # a new, empty table: batches need not read it
        self.collect_tombstones(spark)

    @property
    def no_truncates_marker(self) -> Path:
        """Present while no truncate was ever recorded in truncates/ (removed before the first one is), so
        a batch reads that table only when it may hold one. Storage from before the marker has none: read."""
        return Path(self.trunc_path + ".none")

    def _compaction(self) -> dict[str, Any]:
        """Since the key state's last compaction: rows it kept, appends (and their rows) since, and the
        oldest tombstone it may hold (epoch ms; 0 = unknown, as in state written before this file)."""
        try:
            return dict(json.loads(Path(self.state_path + COMPACTION_SUFFIX).read_text()))
        except (OSError, ValueError):
            return {**_COMPACTED, "oldest_tombstone_ms": 0}

    def _save_compaction(self, state: dict[str, Any]) -> None:
        save_compaction(self.state_path, state)

    def collect_tombstones(self, spark: Any) -> None:
        """Purge tombstones older than the threshold, at most every tombstoneGCFrequencyInSeconds, and only
        when one may have expired (expired ones are ignored by the batches anyway: this reclaims space)."""
        marker = Path(self.ctx.storage.state_path(self.ctx.target.name, "tombstone_gc"))
        now = time.time()
        try:
            last = float(marker.read_text())
        except (OSError, ValueError):
            last = 0.0
        self._last_gc = max(last, self._last_gc)
        if now - self._last_gc < self.gc_every_s:
            return
        oldest = self._compaction().get("oldest_tombstone_ms", 0)
        if oldest is not None and oldest < int((now - self.threshold_s) * 1000):
            self._compact(spark)
        self._last_gc = now
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(now))

    def _compact(self, spark: Any) -> None:
        """Rewrite the key state as one entry per key, expired tombstones dropped (one commit)."""
        cutoff = int((time.time() - self.threshold_s) * 1000)
        latest = self._latest(spark.read.format("delta").load(self.state_path))
        kept = latest.where(~F.col(DELETED) | (F.col(DELETED_AT) >= F.lit(cutoff))).persist()
        try:
            row = kept.agg(F.count("*").alias("n"), F.min(F.when(F.col(DELETED), F.col(DELETED_AT)))).first()
            rows, oldest = int(row[0]), row[1]
            kept.coalesce(1 + rows // 2_000_000).write.format("delta").mode("overwrite").save(self.state_path)
        finally:
            kept.unpersist()
        self._save_compaction({**_COMPACTED, "rows": rows, "oldest_tombstone_ms": oldest})

    def _latest(self, entries: DataFrame) -> DataFrame:
        """One entry per key: its newest (highest __seq; a key's entries only ever grow in sequence)."""
        entry = F.struct(c.col(c.SEQ).alias("s"), c.col(DELETED).alias("d"), c.col(DELETED_AT).alias("a"))
        return (
            entries.groupBy(*[c.col(k) for k in self.keys])
            .agg(F.max_by(entry, c.col(c.SEQ)).alias("__e"))
            .select(
                *[c.col(k) for k in self.keys],
                F.col("__e.s").alias(c.SEQ),
                F.col("__e.d").alias(DELETED),
                F.col("__e.a").alias(DELETED_AT),
            )
        )

    def _appended(self, spark: Any, rows: int, tombstone_ms: int | None) -> None:
        """Count an append to the key state; compact it once the appends reach COMPACT_AFTER_APPENDS or
        outgrow the rows the last compaction kept (so reads stay within twice the keys)."""
        state = self._compaction()
        if tombstone_ms is not None:
            oldest = state.get("oldest_tombstone_ms")
            state["oldest_tombstone_ms"] = tombstone_ms if oldest is None else min(oldest, tombstone_ms)
        if state.pop("empty", False):  # the first entries of an empty state: compact as they are
            self._save_compaction({**state, "rows": rows})
            return
        state["appends"] = int(state.get("appends", 0)) + 1
        state["appended_rows"] = int(state.get("appended_rows", 0)) + rows
        grown = state["appended_rows"] > max(int(state.get("rows", 0)), 1000)
        if state["appends"] >= COMPACT_AFTER_APPENDS or grown:
            self._compact(spark)
        else:
            self._save_compaction(state)

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
        extra.append(F.max(c.col(c.OP) == "D").alias("__has_delete"))
        stats = c.check_nulls(spec, events, self.flow, extra)
        inul = c.ignore_null_columns(spec, values, self.flow)
        now_ms = int(time.time() * 1000)
        # truncates: the newest applied one (state) and the batch's newest
        t_prev = self._last_truncate(spark) if has_truncates else None
        t_batch = stats["__t_batch"] if has_truncates and stats is not None else None
        new_truncate = t_batch is not None and (t_prev is None or t_batch > t_prev)
        t_max = t_batch if new_truncate else t_prev

        # state before the batch: live keys and unexpired tombstones, of the batch's keys only
        cutoff = now_ms - int(self.threshold_s * 1000)
        batch_keys = F.broadcast(events.select(*[c.col(k) for k in keys]).distinct())
        entries = spark.read.format("delta").load(self.state_path).join(batch_keys, keys, "left_semi")
        state = (
            self._latest(entries)
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
            self.no_truncates_marker.unlink(missing_ok=True)  # first: a crash leaves it absent, never stale
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
            (
                src.coalesce(1)
                .write.format("delta")
                .mode("append")
                .options(**c.txn_options(self.ctx.app_id + ":state", batch_id))
                .save(self.state_path)
            )
            has_delete = bool(stats["__has_delete"]) if stats is not None else False
            self._appended(spark, n_effects, now_ms if has_delete else None)
        return metrics

    def _last_truncate(self, spark: Any) -> Any:
        if self.no_truncates_marker.exists():
            return None
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
