"""The audit derived from a pipeline event log: pure functions from DataFrames to DataFrames.

The same functions run on Databricks (over the published event log tables) and locally (over
`<storage>/<pipeline>/system/events`); they read only the documented event log columns, with
`get_json_object` on `details` (portable between Databricks and open-source Spark).

- `updates(events, running)`: one row per finished update (terminal `update_progress` state, or cut off:
  no final state but a later update of the pipeline started); with `running`, also the running ones
  (a continuous update runs for days), with their figures so far.
- `audit_log(events, targets, ...)`: one row per bronze table per update (`bz_audit_log`).
- `audit_expectations(events, targets)`: one row per expectation per table per update.

`targets` maps a bronze table name (`bz_<t>`) to its source table (`tests.<t>`); a pipeline's tables are
the targets its `flow_definition` events name.

Long because: one pure DataFrame function per audit table, all over the same event-log columns, so the
event log is read in one place.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from inventory_bronze import redaction

TERMINAL_UPDATE_STATES = ("COMPLETED", "FAILED", "CANCELED", "STOPPED")
TERMINAL_FLOW_STATES = ("COMPLETED", "FAILED", "STOPPED", "SKIPPED", "EXCLUDED")
SUCCESS_FLOW_STATES = ("COMPLETED", "STOPPED")

AUDIT_KEYS = ["update_id", "target_table"]
EXPECTATION_KEYS = ["update_id", "target_table", "expectation"]

EXPECTATIONS_TYPE = (
    "array<struct<name: string, dataset: string, passed_records: bigint, failed_records: bigint>>"
)


def _detail(path: str, cast: str | None = None) -> Column:
    col = F.get_json_object(F.col("details"), path)
    return col.cast(cast) if cast else col


def redacted(text: Column) -> Column:
    """An error text without the row values it quotes (inventory_bronze.redaction): what the audit and the
    report show, the same on Databricks and locally."""
    for pattern, replacement in redaction.VALUE_PATTERNS:
        text = F.regexp_replace(text, pattern, replacement)
    return text


def _error_text() -> Column:
    """The first exception's message, else the event message; row values redacted."""
    return redacted(F.coalesce(F.col("error.exceptions")[0]["message"], F.col("message")))


def _short(col: Column) -> Column:
    """A dataset's own name: Unity Catalog event logs may qualify it (`catalog`.`schema`.`name`)."""
    return F.regexp_extract(col, r"([^.`]+)`?$", 1)


def _dataset() -> Column:
    """The dataset a flow event is about (the flow's name when the event leaves it out)."""
    return _short(F.coalesce(F.col("origin.dataset_name"), F.col("origin.flow_name")))


def updates(events: DataFrame, running: bool = False) -> DataFrame:
    """One row per finished update: update_id, pipeline_id, pipeline_name, started, ended, state,
    update_error (FAILED only), update_duration_seconds.

    running: also the updates still running (a continuous update runs for days): their state is their
    latest `update_progress` state (RUNNING) and `ended` their latest event, so far."""
    ev = events.select(
        F.col("origin.update_id").alias("update_id"),
        F.col("origin.pipeline_id").alias("pipeline_id"),
        F.col("origin.pipeline_name").alias("pipeline_name"),
        "timestamp",
        "event_type",
        _detail("$.update_progress.state").alias("state"),
        _error_text().alias("error_text"),
    ).where(F.col("update_id").isNotNull())
    progress = F.col("event_type") == "update_progress"
    terminal = progress & F.col("state").isin(*TERMINAL_UPDATE_STATES)
    per_update = ev.groupBy("update_id").agg(
        F.min("timestamp").alias("started"),
        F.first("pipeline_id", ignorenulls=True).alias("pipeline_id"),
        F.first("pipeline_name", ignorenulls=True).alias("pipeline_name"),
        F.max(F.when(terminal, F.col("timestamp"))).alias("terminal_at"),
        F.max_by(F.when(terminal, F.col("state")), F.when(terminal, F.col("timestamp"))).alias("final_state"),
        F.max_by(F.when(terminal, F.col("error_text")), F.when(terminal, F.col("timestamp"))).alias(
            "final_error"
        ),
        F.max_by(F.when(progress, F.col("state")), F.when(progress, F.col("timestamp"))).alias(
            "latest_state"
        ),
        F.max("timestamp").alias("latest_at"),
    )
    # an update never runs alongside a later one of its pipeline: one without a final state that a later
    # one followed was cut off (its process killed) and ended FAILED at its last event
    later = F.lead("started").over(Window.partitionBy("pipeline_id").orderBy("started"))
    per_update = per_update.withColumn("next_started", later)
    cut_off = F.col("terminal_at").isNull() & F.col("next_started").isNotNull()
    finished = F.col("terminal_at").isNotNull() | cut_off
    if not running:
        per_update = per_update.where(finished)
    state = F.coalesce(
        F.col("final_state"), F.when(cut_off, F.lit("FAILED")), F.col("latest_state"), F.lit("RUNNING")
    )
    ended = F.coalesce(F.col("terminal_at"), F.col("latest_at"))
    cut_off_error = F.concat(
        F.lit(
            "the update ended without a final state (its process stopped) before the update that started at "
        ),
        F.col("next_started").cast("string"),
    )
    return per_update.select(
        "update_id",
        "pipeline_id",
        "pipeline_name",
        "started",
        ended.alias("ended"),
        state.alias("state"),
        F.when(cut_off, cut_off_error)
        .when(finished & (state != "COMPLETED"), F.col("final_error"))
        .alias("update_error"),
        ((F.unix_micros(ended) - F.unix_micros("started")) / 1e6).alias("update_duration_seconds"),
    )


def pipeline_tables(events: DataFrame, targets: Mapping[str, str]) -> DataFrame:
    """(pipeline_id, target_table) of every bronze table a pipeline defines (its flow_definition events)."""
    return (
        events.where(F.col("event_type") == "flow_definition")
        .select(
            F.col("origin.pipeline_id").alias("pipeline_id"),
            _short(_detail("$.flow_definition.output_dataset")).alias("target_table"),
        )
        .where(F.col("target_table").isin(*targets))
        .distinct()
    )


def flow_figures(events: DataFrame) -> DataFrame:
    """Per (update_id, dataset): the flows' figures summed over their flow_progress events (Databricks
    reports per micro-batch, the local runtime once per flow), first start, last event, final status."""
    fp = events.where(F.col("event_type") == "flow_progress").select(
        F.col("origin.update_id").alias("update_id"),
        _dataset().alias("dataset"),
        "timestamp",
        _detail("$.flow_progress.status").alias("status"),
        _detail("$.flow_progress.metrics.num_output_rows", "bigint").alias("num_output_rows"),
        _detail("$.flow_progress.metrics.num_upserted_rows", "bigint").alias("num_upserted_rows"),
        _detail("$.flow_progress.metrics.num_deleted_rows", "bigint").alias("num_deleted_rows"),
        _detail("$.flow_progress.data_quality.dropped_records", "bigint").alias("dropped_records"),
        _error_text().alias("error_text"),
        "level",
    )
    terminal = F.col("status").isin(*TERMINAL_FLOW_STATES)
    return fp.groupBy("update_id", "dataset").agg(
        F.coalesce(F.sum("num_output_rows"), F.lit(0)).alias("rows_written"),
        F.coalesce(F.sum("num_upserted_rows"), F.lit(0)).alias("rows_upserted"),
        F.coalesce(F.sum("num_deleted_rows"), F.lit(0)).alias("rows_deleted"),
        F.coalesce(F.sum("dropped_records"), F.lit(0)).alias("rows_dropped"),
        F.min("timestamp").alias("flow_started"),
        F.max("timestamp").alias("flow_ended"),
        # a failure the flow was retried after is a WARN; one that ended it is an ERROR
        F.max((F.col("status") == "FAILED") & (F.col("level") == "ERROR")).alias("flow_failed"),
        F.max_by("status", "timestamp").alias("flow_latest_status"),
        F.max_by(F.when(terminal, F.col("status")), F.when(terminal, F.col("timestamp"))).alias(
            "flow_status"
        ),
        F.max_by(
            F.when(F.col("status") == "FAILED", F.col("error_text")),
            F.when(F.col("status") == "FAILED", F.col("timestamp")),
        ).alias("flow_error"),
    )


def expectation_figures(events: DataFrame, targets: Mapping[str, str]) -> DataFrame:
    """Per (update_id, target_table, expectation): passed and failed records of the flows into the table
    (the expectations sit on the feed view the table's flow reads; `dataset` names it)."""
    exploded = (
        events.where(F.col("event_type") == "flow_progress")
        .select(
            F.col("origin.update_id").alias("update_id"),
            _dataset().alias("target_table"),
            F.explode(
                F.from_json(_detail("$.flow_progress.data_quality.expectations"), EXPECTATIONS_TYPE)
            ).alias("e"),
        )
        .where(F.col("target_table").isin(*targets))
    )
    return exploded.groupBy("update_id", "target_table", F.col("e.name").alias("expectation")).agg(
        F.first("e.dataset", ignorenulls=True).alias("dataset"),
        F.sum(F.coalesce("e.passed_records", F.lit(0))).alias("passed_records"),
        F.sum(F.coalesce("e.failed_records", F.lit(0))).alias("failed_records"),
    )


def _targets_frame(events: DataFrame, targets: Mapping[str, str]) -> DataFrame:
    spark = events.sparkSession
    return spark.createDataFrame(list(targets.items()), "target_table string, source_table string")


def batch_ids(table_windows: DataFrame, bronze_rows: DataFrame | None) -> DataFrame:
    """(update_id, target_table, batch_id): the batch_id the table's rows carry whose load_timestamp lies
    in the update's time window (the update's own id when it is among them)."""
    if bronze_rows is None:
        return table_windows.select("update_id", "target_table", F.lit(None).cast("string").alias("batch_id"))
    rows = bronze_rows.alias("b")
    w = table_windows.alias("w")
    joined = w.join(
        rows,
        (F.col("b.target_table") == F.col("w.target_table"))
        & F.col("b.load_timestamp").between(F.col("w.started"), F.col("w.ended")),
    )
    return joined.groupBy(
        F.col("w.update_id").alias("update_id"), F.col("w.target_table").alias("target_table")
    ).agg(
        F.coalesce(
            F.max(F.when(F.col("b.batch_id") == F.col("w.update_id"), F.col("b.batch_id"))),
            F.min("b.batch_id"),
        ).alias("batch_id")
    )


def audit_log(
    events: DataFrame,
    targets: Mapping[str, str],
    bronze_rows: DataFrame | None = None,
    reconciliation: DataFrame | None = None,
    only_updates: DataFrame | None = None,
    running: bool = False,
) -> DataFrame:
    """`bz_audit_log`: one row per bronze table per finished update (and per running one with
    `running`: its figures so far, status RUNNING unless a flow already failed).

    bronze_rows: (target_table, batch_id, load_timestamp) of the bronze tables, for `batch_id`;
    reconciliation: (update_id, target_table, reconciled_at, status, source_rows, bronze_rows,
    quarantined_only, missing, extra, duplicates), latest per key wins;
    only_updates: (update_id) to restrict the derivation to (incremental runs).
    """
    finished = updates(events, running)
    if only_updates is not None:
        finished = finished.join(only_updates.select("update_id").distinct(), "update_id", "left_semi")
    tables = pipeline_tables(events, targets).join(_targets_frame(events, targets), "target_table")
    base = finished.join(tables, "pipeline_id")
    figures = flow_figures(events)
    main = figures.withColumnRenamed("dataset", "target_table")
    quarantine = figures.select(
        "update_id",
        F.regexp_replace("dataset", "_quarantine$", "").alias("target_table"),
        F.col("rows_written").alias("rows_quarantined"),
    ).where(F.col("dataset").endswith("_quarantine"))
    processed = (
        expectation_figures(events, targets)
        .groupBy("update_id", "target_table")
        .agg(F.max(F.col("passed_records") + F.col("failed_records")).alias("rows_judged"))
    )
    windows = base.select("update_id", "target_table", "started", "ended")
    batches = batch_ids(windows, bronze_rows)
    df = (
        base.join(main, AUDIT_KEYS, "left")
        .join(quarantine, AUDIT_KEYS, "left")
        .join(processed, AUDIT_KEYS, "left")
        .join(batches, AUDIT_KEYS, "left")
    )
    if reconciliation is not None:
        latest = reconciliation.groupBy(*AUDIT_KEYS).agg(
            F.max_by(
                F.struct(
                    F.col("status").alias("reconciliation_status"),
                    F.col("source_rows").alias("reconciled_source_rows"),
                    F.col("bronze_rows").alias("reconciled_bronze_rows"),
                    F.col("quarantined_only").alias("reconciled_quarantined_only"),
                    F.col("missing").alias("reconciled_missing"),
                    F.col("extra").alias("reconciled_extra"),
                    F.col("duplicates").alias("reconciled_duplicates"),
                    F.col("reconciled_at"),
                ),
                "reconciled_at",
            ).alias("r")
        )
        df = df.join(latest, AUDIT_KEYS, "left").select("*", "r.*").drop("r")
    else:
        df = df.select(
            "*",
            F.lit(None).cast("string").alias("reconciliation_status"),
            *[
                F.lit(None).cast("bigint").alias(f"reconciled_{c}")
                for c in ("source_rows", "bronze_rows", "quarantined_only", "missing", "extra", "duplicates")
            ],
            F.lit(None).cast("timestamp").alias("reconciled_at"),
        )
    ok_flow = F.col("flow_status").isin(*SUCCESS_FLOW_STATES)
    update_failed = F.col("state").isin(*TERMINAL_UPDATE_STATES) & (F.col("state") != "COMPLETED")
    failed = (
        F.coalesce(F.col("flow_failed"), F.lit(False))
        | F.coalesce(F.col("flow_status") == "FAILED", F.lit(False))
        | (~F.coalesce(ok_flow, F.lit(False)) & update_failed)
    )
    rows_written = F.coalesce(F.col("rows_written"), F.lit(0))
    return df.select(
        F.md5(F.concat_ws("/", "update_id", "target_table")).alias("audit_id"),
        "source_table",
        "target_table",
        F.coalesce(F.col("batch_id"), F.col("update_id")).alias("batch_id"),
        F.coalesce(F.col("flow_ended"), F.col("ended")).alias("ingestion_timestamp"),
        F.coalesce(F.col("rows_judged"), rows_written).alias("records_processed"),
        F.when(failed, "FAILED")
        .when(F.col("state").isin(*TERMINAL_UPDATE_STATES), "SUCCESS")
        .otherwise("RUNNING")
        .alias("status"),
        F.when(failed, F.coalesce(F.col("flow_error"), F.col("update_error"))).alias("error_message"),
        F.col("pipeline_name").alias("processed_by"),
        "update_id",
        "pipeline_id",
        "pipeline_name",
        F.col("state").alias("update_state"),
        F.col("started").alias("update_started"),
        F.col("ended").alias("update_ended"),
        "update_duration_seconds",
        F.coalesce(
            F.col("flow_status"),
            F.when(~F.col("state").isin(*TERMINAL_UPDATE_STATES), F.col("flow_latest_status")),
            F.lit("NOT_RUN"),
        ).alias("flow_status"),
        ((F.unix_micros("flow_ended") - F.unix_micros("flow_started")) / 1e6).alias("duration_seconds"),
        rows_written.alias("rows_written"),
        F.coalesce(F.col("rows_upserted"), F.lit(0)).alias("rows_upserted"),
        F.coalesce(F.col("rows_deleted"), F.lit(0)).alias("rows_deleted"),
        F.coalesce(F.col("rows_dropped"), F.lit(0)).alias("rows_dropped"),
        F.coalesce(F.col("rows_quarantined"), F.lit(0)).alias("rows_quarantined"),
        "reconciliation_status",
        "reconciled_source_rows",
        "reconciled_bronze_rows",
        "reconciled_quarantined_only",
        "reconciled_missing",
        "reconciled_extra",
        "reconciled_duplicates",
        "reconciled_at",
    )


def audit_expectations(
    events: DataFrame,
    targets: Mapping[str, str],
    only_updates: DataFrame | None = None,
    running: bool = False,
) -> DataFrame:
    """`bz_audit_expectations`: one row per expectation per bronze table per finished update (and per
    running one with `running`, its counts so far)."""
    finished = updates(events, running)
    if only_updates is not None:
        finished = finished.join(only_updates.select("update_id").distinct(), "update_id", "left_semi")
    figures = expectation_figures(events, targets).join(_targets_frame(events, targets), "target_table")
    total = F.col("passed_records") + F.col("failed_records")
    return figures.join(finished, "update_id").select(
        F.md5(F.concat_ws("/", "update_id", "target_table", "expectation")).alias("audit_id"),
        "update_id",
        "pipeline_name",
        "source_table",
        "target_table",
        "expectation",
        "dataset",
        "passed_records",
        "failed_records",
        F.when(total > 0, F.col("passed_records") / total).cast("double").alias("pass_rate"),
        F.col("ended").alias("ingestion_timestamp"),
        F.col("state").alias("update_state"),
    )


SCHEMA_CHANGE_KEYS = ["event_id", "change"]
#: the kinds of schema change a `schema_change` event reports, and its detail holding their columns
_SCHEMA_CHANGE_KINDS = {
    "columns_added": "added_columns",
    "columns_widened": "widened_columns",
    "columns_removed": "removed_columns",
}


def schema_changes(
    events: DataFrame, targets: Mapping[str, str], only_updates: DataFrame | None = None
) -> DataFrame:
    """`bz_audit_schema_changes`: per `schema_change` event of a bronze table or change archive (its schema
    followed its source), one row per kind of change (`columns_added` `name type`, `columns_widened` `name old -> new`,
    `columns_removed`: kept, no longer written by the source): when, which update, which columns."""
    kinds = F.array(
        *[
            F.struct(
                F.lit(kind).alias("change"),
                F.coalesce(
                    F.from_json(_detail(f"$.schema_change.{detail}"), "array<string>"),
                    F.array().cast("array<string>"),
                ).alias("columns"),
            )
            for kind, detail in _SCHEMA_CHANGE_KINDS.items()
        ]
    )
    changes = (
        events.where(F.col("event_type") == "schema_change")
        .select(
            F.col("id").alias("event_id"),
            F.col("origin.update_id").alias("update_id"),
            F.col("origin.pipeline_name").alias("pipeline_name"),
            _short(F.col("origin.dataset_name")).alias("target_table"),
            F.col("timestamp").alias("changed_at"),
            F.explode(kinds).alias("kind"),
            F.col("level"),
            F.col("message"),
        )
        .where(F.size("kind.columns") > 0)
        .select("*", "kind.change", "kind.columns")
        .drop("kind")
    )
    if only_updates is not None:
        changes = changes.join(only_updates.select("update_id").distinct(), "update_id", "left_semi")
    # a captured table's change archive follows the source first (a dropped column shows there: the AUTO
    # CDC target reads the archive, which keeps the column)
    archives = {f"{target}_changes": source for target, source in targets.items()}
    return changes.join(_targets_frame(events, {**targets, **archives}), "target_table").select(
        "event_id",
        "update_id",
        "pipeline_name",
        "source_table",
        "target_table",
        "changed_at",
        "change",
        "columns",
        "level",
        "message",
    )
