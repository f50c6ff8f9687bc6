"""AUTO CDC FROM SNAPSHOT (`apply_changes_from_snapshot` / `create_auto_cdc_from_snapshot_flow`).

Each snapshot is compared with what the target reflects: keys new in the snapshot are inserted, rows whose
values changed are updated (SCD type 1) or get a new version when a tracked column changed (type 2;
untracked columns are updated in place), keys missing from the snapshot are deleted (type 1) or their
current version closed (type 2). Unchanged rows are not touched.

The source is a dataset name (read as a batch at each update; its version is the time it was read, a
TIMESTAMP) or a function `f(latest_version) -> (DataFrame, version) | None` called until it returns None
(its versions must ascend; an older or equal one ends the round).

Hidden state: DIR/system/state/<target>/snapshots -- one row per applied snapshot (n, version). The
target commit of snapshot n is idempotent by (app id + ':snapshot', n) and comes before the state's row,
so a crash between them is harmless: the rerun asks for the same snapshot again and Delta skips its commit.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType
from pyspark.storagelevel import StorageLevel

from localdlt.cdc import common as c
from localdlt.errors import CdcError, DefinitionError
from localdlt.graph import SnapshotCdcSpec
from localdlt.metrics import FlowMetrics

_STATE_SCHEMA = StructType(
    [
        StructField("n", LongType(), False),
        StructField("version", StringType(), True),
        StructField("at", LongType(), True),
    ]
)


def snapshot_target_schema(spec: SnapshotCdcSpec, source_df: DataFrame | None) -> StructType | None:
    """The snapshot's columns (+ __START_AT/__END_AT for type 2, TIMESTAMP: a dataset source's version is
    the time of the read). None for a function source: its first snapshot decides."""
    if source_df is None:
        return None
    fields = [f for f in source_df.schema.fields if f.name not in c.RESERVED]
    missing = [k for k in spec.keys if k not in source_df.columns]
    if missing:
        raise DefinitionError(f"AUTO CDC FROM SNAPSHOT: keys {missing} are not columns of the snapshot.")
    if int(spec.stored_as_scd_type) == 2:
        fields += [
            StructField(c.START_AT, TimestampType(), True),
            StructField(c.END_AT, TimestampType(), True),
        ]
    return StructType(fields)


def _encode(version: Any) -> str:
    if isinstance(version, bool):
        raise TypeError("a bool is not a snapshot version")
    if isinstance(version, int):
        return json.dumps({"t": "int", "v": version})
    if isinstance(version, dt.datetime):
        return json.dumps({"t": "datetime", "v": version.isoformat()})
    if isinstance(version, dt.date):
        return json.dumps({"t": "date", "v": version.isoformat()})
    if isinstance(version, float):
        return json.dumps({"t": "float", "v": version})
    if isinstance(version, str):
        return json.dumps({"t": "str", "v": version})
    raise TypeError(f"unsupported snapshot version type {type(version).__name__}")


def _decode(text: str | None) -> Any:
    if text is None:
        return None
    d = json.loads(text)
    t, v = d["t"], d["v"]
    if t == "datetime":
        return dt.datetime.fromisoformat(v)
    if t == "date":
        return dt.date.fromisoformat(v)
    return v


def _key_text(keys: list[str], row: Any) -> str:
    return "(" + ", ".join(f"{k}={row[k]!r}" for k in keys) + ")"


def _version_lit(version: Any) -> Any:
    if isinstance(version, int) and not isinstance(version, bool):
        return F.lit(version).cast("long")
    if isinstance(version, dt.datetime):
        return F.lit(version).cast("timestamp")
    return F.lit(version)


class SnapshotFlow:
    def __init__(self, ctx: Any, spec: SnapshotCdcSpec) -> None:
        self.ctx = ctx
        self.spec = spec
        self.flow = ctx.flow.name
        self.keys = list(spec.keys)
        self.state_path = ctx.storage.state_path(ctx.target.name, "snapshots")

    def last(self, spark: SparkSession) -> tuple[int, Any]:
        rows = spark.read.format("delta").load(self.state_path).orderBy(F.col("n").desc()).limit(1).collect()
        if not rows:
            return 0, None
        return int(rows[0]["n"]), _decode(rows[0]["version"])

    def run(self) -> None:
        spark = self.ctx.spark
        c.ensure_table(spark, self.state_path, _STATE_SCHEMA)
        n, latest = self.last(spark)
        if isinstance(self.spec.source, str):
            df = self.ctx.reader.read(self.spec.source)
            now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
            self.apply(df, now, n + 1)
            return
        while True:
            result = self.spec.source(latest)
            if result is None:
                return
            try:
                df, version = result
            except (TypeError, ValueError):
                raise CdcError(
                    self.flow,
                    f"AUTO CDC FROM SNAPSHOT flow '{self.flow}': the source function must return "
                    f"(DataFrame, version) or None, got {result!r}.",
                ) from None
            if latest is not None and not version > latest:
                return  # versions ascend: an older (or the same) snapshot is skipped
            self.apply(df, version, n + 1)
            n, latest = n + 1, version

    def apply(self, df: DataFrame, version: Any, n: int) -> None:
        spark = self.ctx.spark
        own = spark.newSession()  # the idempotent-commit settings stay on this flow's own session
        view = f"__localdlt_snapshot_{self.flow}"
        # Read the snapshot once, in the session that defined it: the checks and the MERGE then see the
        # same rows (a JDBC source is not re-queried), and the expectations of the views it was read
        # through count every row of it (their observation completes on this action).
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            df.count()
            df.createOrReplaceGlobalTempView(view)
            snap = own.table(f"global_temp.{view}")
            snap = snap.select(*[c.col(x) for x in snap.columns if x not in c.RESERVED])
            self._check(snap)
            self._ensure_target(own, snap, version)
            if int(self.spec.stored_as_scd_type) == 1:
                metrics = self._apply_scd1(own, snap, n)
            else:
                metrics = self._apply_scd2(own, snap, version, n)
            (
                own.createDataFrame([(n, _encode(version), int(time.time() * 1000))], _STATE_SCHEMA)
                .write.format("delta")
                .mode("append")
                .options(**c.txn_options(self.ctx.app_id + ":snapstate", n))
                .save(self.state_path)
            )
        finally:
            spark.catalog.dropGlobalTempView(view)
            df.unpersist()
        metrics.batches = 1
        self.ctx.metrics.merge(metrics)
        self.ctx.on_progress(self.ctx.metrics)

    def _check(self, snap: DataFrame) -> None:
        missing = [k for k in self.keys if k not in snap.columns]
        if missing:
            raise CdcError(
                self.flow,
                f"AUTO CDC FROM SNAPSHOT flow '{self.flow}': keys {missing} are not in the snapshot.",
            )
        keys = [c.col(k) for k in self.keys]
        # one job for both checks: a NULL key forms a group of its own; such a group is reported first
        has_null = F.greatest(*[k.isNull() for k in keys]) if len(keys) > 1 else keys[0].isNull()
        bad = (
            snap.groupBy(*keys)
            .count()
            .withColumn("__null_key", has_null)
            .where(F.col("__null_key") | (F.col("count") > 1))
            .orderBy(F.col("__null_key").desc())
            .limit(1)
            .collect()
        )
        if bad and bad[0]["__null_key"]:
            raise CdcError(
                self.flow,
                f"AUTO CDC FROM SNAPSHOT flow '{self.flow}': the snapshot has a row whose key "
                f"{_key_text(self.keys, bad[0])} is NULL; keys {self.keys} must be NOT NULL. "
                "Drop or fix such rows in the source view (e.g. with an expect_or_drop on the key).",
            )
        if bad:
            raise CdcError(
                self.flow,
                f"AUTO CDC FROM SNAPSHOT flow '{self.flow}': the snapshot has {bad[0]['count']} rows for key "
                f"{_key_text(self.keys, bad[0])}; keys {self.keys} must identify one row of a snapshot. "
                "Deduplicate the source view or declare the full key.",
            )

    def _ensure_target(self, spark: SparkSession, snap: DataFrame, version: Any) -> None:
        """A function source's target is shaped by its first snapshot (and widened by new columns)."""
        path = self.ctx.target_path
        fields = list(snap.schema.fields)
        if int(self.spec.stored_as_scd_type) == 2:
            vtype = snap.select(_version_lit(version).alias("v")).schema[0].dataType
            fields += [StructField(c.START_AT, vtype, True), StructField(c.END_AT, vtype, True)]
        schema = StructType(fields)
        if not c.delta_exists(spark, path):
            spark.createDataFrame([], schema).write.format("delta").mode("ignore").save(path)
            return
        existing = spark.read.format("delta").load(path).schema
        if {f.name for f in schema.fields} - {f.name for f in existing.fields}:
            (
                spark.createDataFrame([], schema)
                .write.format("delta")
                .mode("append")
                .option("mergeSchema", "true")
                .save(path)
            )

    def _values(self, snap: DataFrame) -> list[str]:
        return [x for x in snap.columns if x not in self.keys]

    def _apply_scd1(self, spark: SparkSession, snap: DataFrame, n: int) -> FlowMetrics:
        q = c.quote
        values = self._values(snap)
        on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in self.keys)
        changed = " OR ".join(f"NOT (t.{q(v)} <=> s.{q(v)})" for v in values) or "false"
        with self.ctx.idempotent_dml(spark, n, ":snapshot"):
            result = (
                DeltaTable.forPath(spark, self.ctx.target_path)
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

    def _apply_scd2(self, spark: SparkSession, snap: DataFrame, version: Any, n: int) -> FlowMetrics:
        q = c.quote
        keys = self.keys
        values = self._values(snap)
        tracked = c.tracked_columns(
            self.spec.track_history_column_list, self.spec.track_history_except_column_list, values, self.flow
        )
        untracked = [v for v in values if v not in tracked]
        current = (
            spark.read.format("delta")
            .load(self.ctx.target_path)
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
            .withColumn("__v", _version_lit(version))
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
                "CAST(NULL AS " + snap.select(_version_lit(version)).schema[0].dataType.simpleString() + ")"
            )
            with self.ctx.idempotent_dml(spark, n, ":snapshot"):
                result = (
                    DeltaTable.forPath(spark, self.ctx.target_path)
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


def run_snapshot_flow(ctx: Any) -> None:
    lock = c.target_lock(ctx.target_path)
    try:
        with lock:
            SnapshotFlow(ctx, ctx.flow.snapshot).run()
    except Exception as err:
        raise ctx.flow_error(err) from None
