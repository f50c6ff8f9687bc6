"""What one flow does once the executor has set up its FlowContext, by kind: a materialized view is
recomputed and replaced (or planned as a no-op when nothing it reads changed), an `append_flow(once=True)`
appends its batch one time, a streaming flow appends each micro-batch exactly once, and AUTO CDC flows are
handed to `localdlt.cdc`."""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

import localdlt.ddl as ddl
import localdlt.expectations as exp
import localdlt.freshness as freshness
from localdlt.errors import DefinitionError
from localdlt.eventlog import EventLog
from localdlt.flowcontext import FlowContext
from localdlt.graph import Dataset
from localdlt.metrics import FlowMetrics
from localdlt.schema_evolution import conform_batch


def run_flow(ctx: FlowContext, schemas: dict[str, StructType], events: EventLog) -> str | None:
    """Run the flow into its target; returns why it had nothing to do, or None when it did something.
    `schemas` are the analysis' schemas of the datasets."""
    flow, ds = ctx.flow, ctx.target
    if flow.kind == "cdc":
        import localdlt.cdc as cdc

        cdc.run_cdc_flow(ctx)
    elif flow.kind == "snapshot_cdc":
        import localdlt.cdc as cdc

        cdc.run_snapshot_flow(ctx)
    elif ds.is_sink:
        import localdlt.sinks as sinks

        sinks.run_sink_flow(ctx)
    elif ds.kind == "table":
        _materialize(ctx, schemas, events)
    elif flow.once:
        _append_once(ctx, schemas)
    else:
        _append_stream(ctx, schemas)
    # expectations of views read in batch (streamed ones report through the query's progress)
    for view in ctx.reader.applied:
        if view.observation is not None and ctx.no_op_reason is None:
            ctx.metrics.merge(_quality_only(view.metrics()))
    return ctx.no_op_reason


def _materialize(ctx: FlowContext, schemas: dict[str, StructType], events: EventLog) -> None:
    """Materialized view: recompute and replace the table's contents in one commit, unless nothing it
    depends on changed since its last refresh (then the refresh is a no-op, as on Databricks)."""
    df = conform(ctx.query(), ctx.target, schemas[ctx.target.name])
    plan = _refresh_plan(ctx, df, events)
    if plan is None:
        return
    applied = exp.apply(df, ctx.target.expectations, ctx.target.name)
    try:
        applied.df.write.format("delta").mode("overwrite").save(ctx.target_path)
    except Exception as err:
        raise ctx.flow_error(err) from None
    if ctx.target.cluster_by:  # an overwrite drops Delta's clustering metadata: set it again
        cols = ", ".join(f"`{c.replace('`', '``')}`" for c in ctx.target.cluster_by)
        path = ctx.target_path.replace("`", "``")
        ctx.spark.sql(f"ALTER TABLE delta.`{path}` CLUSTER BY ({cols})")
    ctx.metrics.merge(applied.metrics())
    ctx.metrics.batches += 1
    if plan.get("fingerprint"):
        state = ctx.storage.flow_state(ctx.flow.name)
        plan["table_version"] = freshness.delta_version(ctx.target_path)
        ctx.storage.save_flow_state(ctx.flow.name, {**state, "refresh": plan})


def _refresh_plan(ctx: FlowContext, df: DataFrame, events: EventLog) -> dict[str, Any] | None:
    """None when the last refresh still holds (planned as NO_OP); otherwise what to remember after it."""
    ds = ctx.target
    extra = {
        "expectations": [(e.name, e.constraint_sql, e.action) for e in ds.expectations],
        "schema": str(ds.schema),
        "conf": {**ctx.conf, **ds.spark_conf, **ctx.flow.spark_conf},
        "layout": [ds.partition_cols, ds.cluster_by, ds.path],
    }
    try:
        info = freshness.plan_info(df, extra)
        inputs = freshness.input_versions(info)
        reason = "; ".join(info.reasons)
    except Exception as err:  # a plan we cannot inspect is recomputed
        info, inputs, reason = None, None, f"plan not inspected ({type(err).__name__})"
    last = ctx.storage.flow_state(ctx.flow.name).get("refresh") or {}
    sources = [{"table_name": path, "version": version} for path, version in sorted((inputs or {}).items())]
    if inputs is not None and info is not None:
        if not last:
            reason = "first refresh"
        elif last.get("fingerprint") != info.fingerprint:
            reason = "the query's definition or configuration changed"
        elif last.get("inputs") != inputs:
            reason = "an input changed"
        elif last.get("table_version") != freshness.delta_version(ctx.target_path):
            reason = "the table was changed since its last refresh"
        else:
            ctx.no_op_reason = "no input changed since the last refresh"
            _planning_event(ctx, events, "NO_OP", ctx.no_op_reason, sources)
            return None
    _planning_event(ctx, events, "COMPLETE_RECOMPUTE", reason, sources)
    if info is None or inputs is None:
        return {}
    return {"fingerprint": info.fingerprint, "inputs": inputs}


def _planning_event(
    ctx: FlowContext, events: EventLog, technique: str, reason: str, sources: list[dict[str, Any]]
) -> None:
    """`planning_information`, as Databricks reports how it refreshes a materialized view."""
    techniques = [
        {"maintenance_type": f"MAINTENANCE_TYPE_{t}", "is_chosen": t == technique, "is_applicable": True}
        for t in (["NO_OP", "COMPLETE_RECOMPUTE"] if technique == "NO_OP" else ["COMPLETE_RECOMPUTE"])
    ]
    events.emit(
        "planning_information",
        {
            "technique_information": techniques,
            "source_table_information": sources,
            "target_table_information": {"table_name": ctx.target.name},
            "reason": reason,
        },
        f"Flow '{ctx.flow.name}' has been planned to be executed as {technique}: {reason}.",
        flow=ctx.flow.name,
        dataset=ctx.target.name,
    )


def _append_once(ctx: FlowContext, schemas: dict[str, StructType]) -> None:
    """`append_flow(once=True)`: append a batch query one time (again after a full refresh)."""
    state = ctx.storage.flow_state(ctx.flow.name)
    if state.get("once_done"):
        return
    df = conform(ctx.query(), ctx.target, schemas[ctx.target.name])
    df = conform_batch(df, ctx.evolve_target(df.schema, keep=_generated(ctx.target)).missing)
    applied = exp.apply(df, ctx.target.expectations, ctx.target.name)
    try:
        (
            applied.df.write.format("delta")
            .mode("append")
            .option("mergeSchema", "true")
            .options(**ctx.write_options(0))
            .save(ctx.target_path)
        )
    except Exception as err:
        raise ctx.flow_error(err) from None
    ctx.metrics.merge(applied.metrics())
    ctx.metrics.batches += 1
    ctx.storage.save_flow_state(ctx.flow.name, {**state, "once_done": True})


def _append_stream(ctx: FlowContext, schemas: dict[str, StructType]) -> None:
    """Streaming table flow: append each micro-batch exactly once (Delta idempotent writes)."""
    schema = schemas[ctx.target.name]
    target = ctx.target
    query = ctx.query()
    missing: list[StructField] = []  # the target's columns the flow no longer writes: NULL from now on

    def evolve() -> None:
        missing[:] = ctx.evolve_target(conform(query, target, schema).schema, keep=_generated(target)).missing

    def batch(batch_df: DataFrame, batch_id: int) -> FlowMetrics:
        batch_df = conform_batch(conform(batch_df, target, schema), missing)
        applied = exp.apply(batch_df, target.expectations, target.name)
        (
            applied.df.write.format("delta")
            .mode("append")
            .option("mergeSchema", "true")
            .options(**ctx.write_options(batch_id))
            .save(ctx.target_path)
        )
        return applied.metrics()

    ctx.run_stream(query, batch, before_start=evolve)


def _generated(target: Dataset) -> frozenset[str]:
    return frozenset(ddl.generated_columns(target.schema))


def conform(df: DataFrame, ds: Dataset, schema: StructType) -> DataFrame:
    """Enforce a declared schema: the query's columns, in the declared order and types. A generated column
    the query lacks is left out: Delta computes it on write."""
    if ds.schema is None:
        return df
    have = {c.lower(): c for c in df.columns}
    generated = {c.lower() for c in _generated(ds)}
    schema = StructType(
        [f for f in schema.fields if f.name.lower() in have or f.name.lower() not in generated]
    )
    missing = [f.name for f in schema.fields if f.name.lower() not in have]
    extra = [c for c in df.columns if c.lower() not in {f.name.lower() for f in schema.fields}]
    if missing or extra:
        raise DefinitionError(
            f"The query of '{ds.name}' does not match its declared schema: missing {missing}, "
            f"not declared {extra}."
        )
    return df.select(*[F.col(have[f.name.lower()]).cast(f.dataType).alias(f.name) for f in schema.fields])


def _quality_only(m: FlowMetrics) -> FlowMetrics:
    return FlowMetrics(expectations=m.expectations, dropped_records=m.dropped_records)
