"""The terminal list of `inventory-bronze status`: per pipeline, its last updates (running ones too) and
each flow's state and figures, read straight from the event logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from inventory_bronze.audit import derive
from inventory_bronze.audit.store import event_log_paths


def update_states(events: DataFrame) -> DataFrame:
    """Every update, finished or not: its start, last event and latest state."""
    state = F.get_json_object("details", "$.update_progress.state")
    return (
        events.where(F.col("origin.update_id").isNotNull())
        .groupBy(F.col("origin.update_id").alias("update_id"))
        .agg(
            F.min("timestamp").alias("started"),
            F.max("timestamp").alias("last_event"),
            F.max_by(F.when(state.isNotNull(), state), F.when(state.isNotNull(), F.col("timestamp"))).alias(
                "state"
            ),
        )
    )


def failed_expectations(events: DataFrame) -> DataFrame:
    """(update_id, dataset, failed_records) summed over the expectations of each flow's target."""
    exploded = events.where(F.col("event_type") == "flow_progress").select(
        F.col("origin.update_id").alias("update_id"),
        F.col("origin.dataset_name").alias("dataset"),
        F.explode(
            F.from_json(
                F.get_json_object("details", "$.flow_progress.data_quality.expectations"),
                derive.EXPECTATIONS_TYPE,
            )
        ).alias("e"),
    )
    return exploded.groupBy("update_id", "dataset").agg(F.sum("e.failed_records").alias("failed_records"))


def _seconds(a: Any, b: Any) -> str:
    return f"{(b - a).total_seconds():.1f}s" if a is not None and b is not None else "-"


def render(spark: Any, storage: Path, last: int = 3) -> str:
    lines: list[str] = []
    for key, path in event_log_paths(storage).items():
        events = spark.read.format("delta").load(str(path))
        recent = update_states(events).orderBy(F.col("started").desc()).limit(max(1, last)).collect()
        lines.append(f"pipeline {key} ({path})")
        if not recent:
            lines.append("  no updates yet")
            continue
        ids = [u.update_id for u in recent]
        flows = (
            derive.flow_figures(events.where(F.col("origin.update_id").isin(ids)))
            .join(failed_expectations(events), ["update_id", "dataset"], "left")
            .orderBy("dataset")
            .collect()
        )
        for u in recent:
            lines.append(
                f"  update {u.update_id}  {u.state or '?':<18} started {u.started:%Y-%m-%d %H:%M:%S}  "
                f"{_seconds(u.started, u.last_event)}"
            )
            head = f"    {'flow':<30}{'state':<11}{'written':>10}{'upserted':>10}{'deleted':>9}{'dropped':>9}{'exp.failed':>11}{'time':>9}"
            lines.append(head)
            for f in (f for f in flows if f.update_id == u.update_id):
                status = f.flow_status or ("FAILED" if f.flow_failed else "RUNNING")
                lines.append(
                    f"    {f.dataset:<30}{status:<11}{f.rows_written:>10,}{f.rows_upserted:>10,}"
                    f"{f.rows_deleted:>9,}{f.rows_dropped:>9,}{(f.failed_records or 0):>11,}"
                    f"{_seconds(f.flow_started, f.flow_ended):>9}"
                )
                if f.flow_error:
                    lines.append(f"      error: {f.flow_error.splitlines()[0][:160]}")
        lines.append("")
    return "\n".join(lines).rstrip()
