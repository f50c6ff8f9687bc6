"""AUTO CDC (`apply_changes` / `create_auto_cdc_flow`) and AUTO CDC FROM SNAPSHOT for the local runtime.

Called by the analysis (the schemas) and by `localdlt.flowkinds` (the flows):
    cdc_target_schema(spec, source_df)       -> StructType of the target (analysis)
    snapshot_target_schema(spec, source_df)  -> StructType, or None for a function source (the flow
                                                creates / widens the target itself on its first snapshot)
    run_cdc_flow(ctx)                         -> processes the change feed into ctx.target_path
    run_snapshot_flow(ctx)                    -> applies the snapshots into ctx.target_path
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql.types import StructType

from localdlt.cdc import common
from localdlt.cdc.scd1 import Scd1
from localdlt.cdc.scd2 import Scd2
from localdlt.cdc.snapshot import run_snapshot_flow, snapshot_target_schema
from localdlt.graph import CdcSpec
from localdlt.metrics import FlowMetrics

__all__ = ["cdc_target_schema", "snapshot_target_schema", "run_cdc_flow", "run_snapshot_flow"]


def cdc_target_schema(spec: CdcSpec, source_df: DataFrame) -> StructType:
    """The target's schema: the chosen source columns (keys always), plus __START_AT/__END_AT typed like
    the sequence for SCD type 2."""
    return common.cdc_target_schema(spec, source_df)


def run_cdc_flow(ctx: Any) -> None:
    """Apply the flow's change feed to its target, batch by batch, exactly once."""
    spec = ctx.flow.cdc
    engine = Scd1(ctx, spec) if int(spec.stored_as_scd_type) == 1 else Scd2(ctx, spec)
    lock = common.target_lock(ctx.target_path)
    if ctx.flow.once:
        _run_once(ctx, engine, lock)
        return
    df = ctx.reader.read_stream(spec.source)

    def prepare() -> None:  # hidden state set up (and tombstones collected) only when a batch will run
        try:
            with lock:  # other flows into the target may be applying batches
                # the target follows its source's schema (a column it no longer has is kept, as in a MERGE)
                ctx.evolve_target(common.cdc_target_schema(spec, df), keep=frozenset(common.RESERVED))
                engine.prepare(df)
        except Exception as err:
            raise ctx.flow_error(err) from None

    def batch_fn(batch_df: DataFrame, batch_id: int) -> FlowMetrics:
        with lock:
            return engine.apply(batch_df, batch_id)

    ctx.run_stream(df, batch_fn, before_start=prepare)


def _run_once(ctx: Any, engine: Any, lock: Any) -> None:
    """`once=True`: the source is read as a batch and applied one time (again after a full refresh)."""
    state = ctx.storage.flow_state(ctx.flow.name)
    if state.get("once_done"):
        return
    try:
        df = ctx.reader.read(ctx.flow.cdc.source)
        engine.prepare(df)
        # the idempotent-DML settings go on a session of this flow's own (not the one flows share)
        own = ctx.spark.newSession()
        view = f"__localdlt_once_{ctx.flow.name}"
        df.createOrReplaceGlobalTempView(view)
        try:
            with lock:
                metrics = engine.apply(own.table(f"global_temp.{view}"), 0)
        finally:
            ctx.spark.catalog.dropGlobalTempView(view)
    except Exception as err:
        raise ctx.flow_error(err) from None
    metrics.batches = 1
    ctx.metrics.merge(metrics)
    ctx.on_progress(ctx.metrics)
    ctx.storage.save_flow_state(ctx.flow.name, {**state, "once_done": True})
