"""What SCD type 1 and type 2 share: the target's columns, turning a source batch into sequenced events,
the NULL key / NULL sequence checks, hidden-state tables and the per-target lock.

A prepared event has the target's key and value columns plus:

    __seq   the sequence value (`sequence_by` evaluated: a column, a SQL expression or a Column/struct)
    __op    'U' upsert, 'D' delete (`apply_as_deletes`), 'T' truncate (`apply_as_truncates`)
    __tb    a tie-breaker (hash of the values) so events of one key at one sequence order deterministically

Events of one key are ordered by (__seq, delete after upsert, __tb): Databricks asks for one distinct
change per key and sequence value; when a feed breaks that rule, this order decides (the same for every
batch split, so the result never depends on how events were batched).
"""

from __future__ import annotations

import os
import re
import signal
import threading
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from localdlt.errors import CdcError, DefinitionError
from localdlt.graph import CdcSpec

SEQ = "__seq"
OP = "__op"
TB = "__tb"
START_AT = "__START_AT"
END_AT = "__END_AT"
RESERVED = {START_AT, END_AT}

TOMBSTONE_GC_THRESHOLD = "pipelines.cdc.tombstoneGCThresholdInSeconds"
TOMBSTONE_GC_FREQUENCY = "pipelines.cdc.tombstoneGCFrequencyInSeconds"
DEFAULT_TOMBSTONE_GC_THRESHOLD_S = 2 * 24 * 3600
DEFAULT_TOMBSTONE_GC_FREQUENCY_S = 5 * 60

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def target_lock(path: str) -> threading.Lock:
    """Flows feeding one target apply their batches one at a time: each batch reads the target's hidden
    state and then commits, so two interleaved batches would each miss the other's changes."""
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def col(name: str) -> Column:
    return F.col(quote(name))


# ------------------------------------------------------------------------------------------- columns
def _check_known(names: list[str] | None, available: list[str], what: str, flow: str) -> None:
    missing = [n for n in names or [] if n not in available]
    if missing:
        raise DefinitionError(
            f"AUTO CDC flow '{flow}': {what} names column(s) {missing} that the source does not have "
            f"(source columns: {available})."
        )


def target_columns(spec: CdcSpec, source_columns: list[str], flow: str) -> list[str]:
    """The target's columns in source order: `column_list` or all but `except_column_list`; the keys are
    always kept (rows are matched on them). The sequence column is an ordinary column here: it is in the
    target unless the lists leave it out, as in Databricks' examples (`except_column_list=["op", "seq"]`).
    """
    cols = [c for c in source_columns if c not in RESERVED]
    _check_known(spec.keys, cols, "keys", flow)
    _check_known(spec.column_list, cols, "column_list", flow)
    _check_known(spec.except_column_list, cols, "except_column_list", flow)
    if spec.column_list is not None:
        chosen = [c for c in cols if c in spec.column_list or c in spec.keys]
    elif spec.except_column_list is not None:
        chosen = [c for c in cols if c not in spec.except_column_list or c in spec.keys]
    else:
        chosen = cols
    return chosen


def value_columns(spec: CdcSpec, source_columns: list[str], flow: str) -> list[str]:
    return [c for c in target_columns(spec, source_columns, flow) if c not in spec.keys]


def ignore_null_columns(spec: CdcSpec, values: list[str], flow: str) -> list[str]:
    """Columns where an update's NULL keeps the existing value."""
    if spec.ignore_null_updates_column_list is not None:
        _check_known(spec.ignore_null_updates_column_list, values, "ignore_null_updates_column_list", flow)
        return [c for c in values if c in spec.ignore_null_updates_column_list]
    if spec.ignore_null_updates_except_column_list is not None:
        _check_known(
            spec.ignore_null_updates_except_column_list,
            values,
            "ignore_null_updates_except_column_list",
            flow,
        )
        return [c for c in values if c not in spec.ignore_null_updates_except_column_list]
    return list(values) if spec.ignore_null_updates else []


def tracked_columns(
    track_list: list[str] | None, track_except: list[str] | None, values: list[str], flow: str
) -> list[str]:
    """SCD type 2: columns whose change opens a new version (the others are updated in place)."""
    if track_list is not None:
        _check_known(track_list, values, "track_history_column_list", flow)
        return [c for c in values if c in track_list]
    if track_except is not None:
        _check_known(track_except, values, "track_history_except_column_list", flow)
        return [c for c in values if c not in track_except]
    return list(values)


# ---------------------------------------------------------------------------------------- sequencing
def sequence_column(sequence_by: Any, columns: list[str]) -> Column:
    if isinstance(sequence_by, str):
        return col(sequence_by) if sequence_by in columns else F.expr(sequence_by)
    if isinstance(sequence_by, Column):
        return sequence_by
    raise DefinitionError(
        f"sequence_by must be a column name, a SQL expression or a Column, got {sequence_by!r}."
    )


def sequence_name(sequence_by: Any) -> str:
    if isinstance(sequence_by, str):
        return sequence_by
    text = str(sequence_by)
    m = re.match(r"Column<'(.*)'>$", text, re.S)
    return m.group(1) if m else text


def condition(value: Any) -> Column | None:
    if value is None:
        return None
    if isinstance(value, str):
        return F.expr(value)
    return value


def sequence_type(spec: CdcSpec, source_df: DataFrame) -> Any:
    return (
        source_df.select(sequence_column(spec.sequence_by, source_df.columns).alias(SEQ)).schema[0].dataType
    )


def cdc_target_schema(spec: CdcSpec, source_df: DataFrame, flow: str = "") -> StructType:
    flow = flow or "<cdc>"
    cols = target_columns(spec, source_df.columns, flow)
    fields = [source_df.schema[c] for c in cols]
    if int(spec.stored_as_scd_type) == 2:
        seq_type = sequence_type(spec, source_df)
        fields += [StructField(START_AT, seq_type, True), StructField(END_AT, seq_type, True)]
    return StructType(fields)


def prepare_events(spec: CdcSpec, df: DataFrame, flow: str) -> tuple[DataFrame, list[str]]:
    """Source rows -> events (keys, values, __seq, __op, __tb); returns them with the value columns."""
    if spec.where is not None:
        df = df.where(condition(spec.where))
    values = value_columns(spec, df.columns, flow)
    seq = sequence_column(spec.sequence_by, df.columns)
    deletes = condition(spec.apply_as_deletes)
    truncates = condition(spec.apply_as_truncates)
    op: Column = F.lit("U")
    if deletes is not None:
        op = F.when(F.coalesce(deletes, F.lit(False)), F.lit("D")).otherwise(op)
    if truncates is not None:
        op = F.when(F.coalesce(truncates, F.lit(False)), F.lit("T")).otherwise(op)
    tie = F.xxhash64(*[col(c) for c in values]) if values else F.lit(0).cast("long")
    out = df.select(
        *[col(k) for k in spec.keys],
        *[col(v) for v in values],
        seq.alias(SEQ),
        op.alias(OP),
        tie.alias(TB),
    )
    return out, values


def check_nulls(spec: CdcSpec, events: DataFrame, flow: str, extra: list[Column] | None = None) -> Any:
    """A NULL key (except on a truncate, which has no key) or a NULL sequence fails the flow. `extra`
    aggregates ride on the same Spark job; their row is returned."""
    checks = [
        F.max(F.when((col(OP) != "T") & col(k).isNull(), 1).otherwise(0)).alias(f"__k{i}")
        for i, k in enumerate(spec.keys)
    ]
    checks.append(F.max(F.when(col(SEQ).isNull(), 1).otherwise(0)).alias("__null_seq"))
    row = events.agg(*checks, *(extra or [])).first()
    if row is None:
        return None
    for i, k in enumerate(spec.keys):
        if row[f"__k{i}"] == 1:
            raise CdcError(
                flow,
                f"AUTO CDC flow '{flow}' failed: key column '{k}' is NULL in a change event. Keys of "
                f"AUTO CDC events must not be NULL: fix the source, or filter such rows with `where`.",
            )
    if row["__null_seq"] == 1:
        raise CdcError(
            flow,
            f"AUTO CDC flow '{flow}' failed: sequence_by ({sequence_name(spec.sequence_by)}) is NULL in "
            f"a change event. NULL sequence values are not supported: fix the source, or filter such rows "
            f"with `where`.",
        )
    return row


def order_struct() -> Column:
    """Total order of the events of one key."""
    return F.struct(
        col(SEQ).alias("s"), F.when(col(OP) == "D", 1).otherwise(0).alias("d"), col(TB).alias("t")
    )


# ---------------------------------------------------------------------------------------------- state
def delta_exists(spark: SparkSession, path: str) -> bool:
    from delta.tables import DeltaTable

    try:
        return DeltaTable.isDeltaTable(spark, path)
    except Exception:
        return False


def ensure_table(spark: SparkSession, path: str, schema: StructType) -> None:
    """Create an empty hidden-state Delta table (deletion vectors on: merges touch few rows)."""
    if delta_exists(spark, path):
        return
    (
        spark.createDataFrame([], schema)
        .write.format("delta")
        .mode("ignore")
        .option("delta.enableDeletionVectors", "true")
        .save(path)
    )


CRASH_ENV = "LOCALDLT_CDC_CRASH_AT"


def crash_point(name: str, batch_id: int) -> None:
    """Test hook: LOCALDLT_CDC_CRASH_AT=<point>:<batch id> kills this process (SIGKILL, like kill -9)
    at that point of that batch -- e.g. 'after-target:1' between the target's and the state's commits."""
    wanted = os.environ.get(CRASH_ENV)
    if wanted and wanted == f"{name}:{batch_id}":
        os.kill(os.getpid(), signal.SIGKILL)


def txn_options(app_id: str, batch_id: int) -> dict[str, str]:
    return {"txnAppId": app_id, "txnVersion": str(batch_id)}


def merge_counts(result: DataFrame | None) -> dict[str, int]:
    """Delta's MERGE returns one row of counts (none when an idempotent commit was skipped)."""
    rows = result.collect() if result is not None else []
    if not rows:
        return {"num_affected_rows": 0, "num_updated_rows": 0, "num_deleted_rows": 0, "num_inserted_rows": 0}
    d = rows[0].asDict()
    return {
        k: int(d.get(k) or 0)
        for k in ("num_affected_rows", "num_updated_rows", "num_deleted_rows", "num_inserted_rows")
    }


def setting(ctx: Any, key: str, default: float) -> float:
    raw = ctx.target.table_properties.get(key) or ctx.conf.get(key)
    if raw is None:
        try:
            raw = ctx.spark.conf.get(key, None)
        except Exception:
            raw = None
    try:
        return float(raw) if raw is not None else default
    except ValueError as err:
        raise DefinitionError(f"{key} must be a number of seconds, got {raw!r}.") from err
