"""AUTO CDC FROM SNAPSHOT (`apply_changes_from_snapshot` / `create_auto_cdc_from_snapshot_flow`).

Each snapshot is compared with what the target reflects: keys new in the snapshot are inserted, rows whose
values changed are updated (SCD type 1) or get a new version when a tracked column changed (type 2;
untracked columns are updated in place), keys missing from the snapshot are deleted (type 1) or their
current version closed (type 2). Unchanged rows are not touched.

The source is a dataset name (read as a batch at each update; its version is the time it was read, a
TIMESTAMP) or a function `f(latest_version) -> (DataFrame, version) | None` called until it returns None
(its versions must ascend; an older or equal one ends the round).

How a snapshot is applied: one pass compares it with the target's current rows (a full outer join on the
keys, cached) and counts each kind of change; when nothing changed nothing is written, otherwise the
target's new contents are written in one overwrite commit (the rows a MERGE would leave, computed from the
cached comparison). A snapshot table is read whole on every update anyway, so one overwrite costs what a
MERGE touching every file costs, without the MERGE's two passes; a target whose columns the snapshot does
not cover exactly (a source column dropped) is MERGEd instead (`localdlt.cdc.snapshot_merge`).

Hidden state: DIR/system/state/<target>/snapshot.json -- the last applied snapshot (n, version), replaced
atomically (earlier versions kept it in a Delta table, snapshots/, still read when the file is missing). The
target commit comes before the state is written. A crash between them is harmless: for a function source
the rerun asks for the same snapshot n again and Delta skips its commit, idempotent by (app id + ':snapshot',
n); a dataset source is read anew by the rerun (the source may have moved on), and its commit, a difference
against the target's current rows, is applied (a txn would skip that newer snapshot as already committed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType, TimestampType
from pyspark.storagelevel import StorageLevel

import localdlt.cdc.common as c
from localdlt.cdc.snapshot_merge import merge_scd1, merge_scd2
from localdlt.cdc.snapshot_versions import decode, encode, version_lit
from localdlt.errors import CdcError, DefinitionError
from localdlt.graph import SnapshotCdcSpec
from localdlt.metrics import FlowMetrics
from localdlt.storage import write_json

ROWS_PER_FILE = 1_000_000


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


def _key_text(keys: list[str], row: Any) -> str:
    return "(" + ", ".join(f"{k}={row[k]!r}" for k in keys) + ")"


class SnapshotFlow:
    def __init__(self, ctx: Any, spec: SnapshotCdcSpec) -> None:
        self.ctx = ctx
        self.spec = spec
        self.flow = ctx.flow.name
        self.keys = list(spec.keys)
        self.state_file = Path(ctx.storage.state_path(ctx.target.name, "snapshot.json"))
        self.legacy_state_path = ctx.storage.state_path(ctx.target.name, "snapshots")

    def last(self, spark: SparkSession) -> tuple[int, Any]:
        """The last applied snapshot: (n, version), (0, None) before the first."""
        try:
            state = json.loads(self.state_file.read_text())
            return int(state["n"]), decode(state["version"])
        except FileNotFoundError:
            pass
        if not c.delta_exists(spark, self.legacy_state_path):
            return 0, None
        rows = (
            spark.read.format("delta")
            .load(self.legacy_state_path)
            .orderBy(F.col("n").desc())
            .limit(1)
            .collect()
        )
        return (int(rows[0]["n"]), decode(rows[0]["version"])) if rows else (0, None)

    def _save(self, n: int, version: Any) -> None:
        write_json(self.state_file, {"n": n, "version": encode(version), "at": int(time.time() * 1000)})

    def run(self) -> None:
        spark = self.ctx.spark
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
            self._save(n, version)
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
        """A function source's target is shaped by its first snapshot; a target follows the snapshot's
        schema (localdlt.schema_evolution; a column the snapshot no longer has is kept, as in a MERGE)."""
        path = self.ctx.target_path
        fields = list(snap.schema.fields)
        if int(self.spec.stored_as_scd_type) == 2:
            vtype = snap.select(version_lit(version).alias("v")).schema[0].dataType
            fields += [StructField(c.START_AT, vtype, True), StructField(c.END_AT, vtype, True)]
        schema = StructType(fields)
        if not c.delta_exists(spark, path):
            spark.createDataFrame([], schema).write.format("delta").mode("ignore").save(path)
            return
        self.ctx.evolve_target(schema, keep=frozenset(c.RESERVED))

    def _values(self, snap: DataFrame) -> list[str]:
        return [x for x in snap.columns if x not in self.keys]

    def _covers_target(self, target: DataFrame, snap: DataFrame, scd2: bool) -> bool:
        """True when the target has exactly the snapshot's columns (and types), plus __START_AT/__END_AT
        for type 2: then the target's new contents follow from the comparison alone."""
        have = {f.name: f.dataType for f in target.schema.fields}
        want = {f.name: f.dataType for f in snap.schema.fields}
        if scd2:
            if c.START_AT not in have or c.END_AT not in have:
                return False
            want[c.START_AT], want[c.END_AT] = have[c.START_AT], have[c.END_AT]
        return have == want

    def _compare(self, snap: DataFrame, current: DataFrame, more: list[Any], changes: Any) -> DataFrame:
        """The snapshot full-outer-joined with the target's `current` rows (their values as __cur_<i>, and
        `more` columns), each row with its __kind, cached: new, gone, else the first of `changes(same)`
        ((kind, condition) pairs; `same(cols)` compares those columns null-safely) that holds, else None
        (unchanged)."""
        values = self._values(snap)
        current = current.select(
            *[c.col(k) for k in self.keys],
            *[c.col(v).alias(f"__cur_{i}") for i, v in enumerate(values)],
            *more,
            F.lit(True).alias("__in_cur"),
        )

        def same(cols: list[str]) -> Any:
            out = F.lit(True)
            for v in cols:
                out = out & c.col(v).eqNullSafe(F.col(f"__cur_{values.index(v)}"))
            return out

        kind = F.when(F.col("__in_cur").isNull(), F.lit("new")).when(
            F.col("__in_snap").isNull(), F.lit("gone")
        )
        for label, differs in changes(same):
            kind = kind.when(differs, F.lit(label))
        j = snap.withColumn("__in_snap", F.lit(True)).join(current, self.keys, "full_outer")
        return j.withColumn("__kind", kind).persist()

    @staticmethod
    def _kinds(compared: DataFrame) -> dict[str | None, int]:
        """Rows of each kind of change (None: unchanged)."""
        rows = compared.groupBy("__kind").count().collect()
        return {r["__kind"]: int(r["count"]) for r in rows}

    @property
    def _read_anew(self) -> bool:
        """A dataset source, read anew by a rerun: its commits go without a txn (see the module's docstring)."""
        return isinstance(self.spec.source, str)

    def _txn(self, n: int) -> dict[str, str]:
        """The overwrite's exactly-once options, for a function source."""
        return {} if self._read_anew else c.txn_options(self.ctx.app_id + ":snapshot", n)

    def _idempotent(self, spark: SparkSession, n: int) -> Any:
        """The MERGE's exactly-once settings, for a function source."""
        return contextlib.nullcontext() if self._read_anew else self.ctx.idempotent_dml(spark, n, ":snapshot")

    def _overwrite(self, rows: DataFrame, n: int, row_count: int) -> None:
        """The target's new contents in one commit, exactly once for snapshot n. `replaceWhere` keeps the
        table's definition (a plain overwrite would drop its clustering columns); a file per million rows."""
        (
            rows.coalesce(1 + row_count // ROWS_PER_FILE)
            .write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", "true")
            .options(**self._txn(n))
            .save(self.ctx.target_path)
        )

    def _apply_scd1(self, spark: SparkSession, snap: DataFrame, n: int) -> FlowMetrics:
        target = spark.read.format("delta").load(self.ctx.target_path)
        if not self._covers_target(target, snap, scd2=False):
            return merge_scd1(spark, self.ctx.target_path, snap, self.keys, self._idempotent(spark, n))
        values = self._values(snap)
        compared = self._compare(snap, target, [], lambda same: [("changed", ~same(values))])
        try:
            kinds = self._kinds(compared)
            if set(kinds) - {None}:  # the new contents are the snapshot's rows
                rows = compared.where(F.col("__in_snap").isNotNull())
                self._overwrite(rows.select(*[c.col(x) for x in target.columns]), n, sum(kinds.values()))
        finally:
            compared.unpersist()
        new, changed, gone = kinds.get("new", 0), kinds.get("changed", 0), kinds.get("gone", 0)
        return FlowMetrics(
            num_output_rows=new + changed + gone, num_upserted_rows=new + changed, num_deleted_rows=gone
        )

    def _apply_scd2(self, spark: SparkSession, snap: DataFrame, version: Any, n: int) -> FlowMetrics:
        target = spark.read.format("delta").load(self.ctx.target_path)
        values = self._values(snap)
        tracked = c.tracked_columns(
            self.spec.track_history_column_list, self.spec.track_history_except_column_list, values, self.flow
        )
        if not self._covers_target(target, snap, scd2=True):
            idempotent = self._idempotent(spark, n)
            return merge_scd2(spark, self.ctx.target_path, snap, self.keys, tracked, version, idempotent)
        untracked = [v for v in values if v not in tracked]
        compared = self._compare(
            snap,
            target.where(F.col(c.END_AT).isNull()),
            [c.col(c.START_AT).alias("__cur_start")],
            lambda same: [("changed", ~same(tracked)), ("inplace", ~same(untracked))],
        )
        try:
            kinds = self._kinds(compared)
            if set(kinds) - {None}:
                rows = self._scd2_contents(target, compared, values, tracked, version)
                self._overwrite(rows, n, sum(kinds.values()))
        finally:
            compared.unpersist()
        new, changed = kinds.get("new", 0), kinds.get("changed", 0)
        inplace, gone = kinds.get("inplace", 0), kinds.get("gone", 0)
        return FlowMetrics(
            # as a MERGE counts them: a changed key closes a version and opens one
            num_output_rows=new + 2 * changed + inplace + gone,
            num_upserted_rows=new + changed + inplace,
            num_deleted_rows=gone,
        )

    def _scd2_contents(
        self, target: DataFrame, compared: DataFrame, values: list[str], tracked: list[str], version: Any
    ) -> DataFrame:
        """What the target holds after the snapshot: closed versions as they were; current rows unchanged,
        updated in place (untracked columns), closed (gone, changed), and new versions (new, changed)."""
        start_type = target.schema[c.START_AT].dataType
        end_type = target.schema[c.END_AT].dataType
        v = version_lit(version)
        kind = F.col("__kind")

        def row(source: str, start: Any, end: Any) -> list[Any]:
            out = [c.col(k) for k in self.keys]
            for i, x in enumerate(values):
                cur = F.col(f"__cur_{i}")
                pick = {"cur": cur, "snap": c.col(x), "inplace": cur if x in tracked else c.col(x)}[source]
                out.append(pick.alias(x))
            return [*out, start.cast(start_type).alias(c.START_AT), end.cast(end_type).alias(c.END_AT)]

        null = F.lit(None)
        kept = compared.where(kind.isNull() & F.col("__in_cur").isNotNull()).select(
            *row("cur", F.col("__cur_start"), null)
        )
        parts = [
            target.where(F.col(c.END_AT).isNotNull()),
            kept,
            compared.where(kind == "inplace").select(*row("inplace", F.col("__cur_start"), null)),
            compared.where(kind.isin("gone", "changed")).select(*row("cur", F.col("__cur_start"), v)),
            compared.where(kind.isin("new", "changed")).select(*row("snap", v, null)),
        ]
        out = parts[0].select(*[c.col(x) for x in target.columns])
        for part in parts[1:]:
            out = out.unionByName(part.select(*[c.col(x) for x in target.columns]))
        return out


def run_snapshot_flow(ctx: Any) -> None:
    lock = c.target_lock(ctx.target_path)
    try:
        with lock:
            SnapshotFlow(ctx, ctx.flow.snapshot).run()
    except Exception as err:
        raise ctx.flow_error(err) from None
