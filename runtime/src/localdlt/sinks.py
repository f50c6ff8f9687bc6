"""What a flow into a sink does (`dp.create_sink`, `@dp.foreach_batch_sink`): append each micro-batch of its
streaming query (or, with `once=True`, its batch query one time) to a destination outside the pipeline.

- Delta sink with `{"path": ...}`: a Delta table at that folder (created by the first write).
- Delta sink with `{"tableName": ...}`: locally, a table of the Spark session's catalog (`spark_catalog`,
  a managed Delta table in the session's warehouse folder, created by the first write); a three-part
  name needs that catalog configured in the session, as Unity Catalog names need on Databricks.
- ForEachBatch sink: the decorated `f(df, batch_id)` is called with each micro-batch (Spark's
  `foreachBatch`; batch ids start again at 0 after a full refresh).

Delta writes are exactly-once per micro-batch (Delta idempotent writes keyed on the flow's checkpoint
generation). A full refresh never empties a sink: it resets the flows' checkpoints, so they append what
they read again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame

import localdlt.expectations as exp
from localdlt.metrics import FlowMetrics

if TYPE_CHECKING:
    from localdlt.flowcontext import FlowContext
    from localdlt.graph import Dataset

DELTA = "delta"
FOREACH_BATCH = "foreach_batch"


def sink_path(ds: Dataset) -> str:
    """The folder of a Delta sink given by path; '' for other sinks."""
    options = ds.sink.options if ds.sink is not None else {}
    return str(Path(options["path"]).expanduser().resolve()) if "path" in options else ""


def run_sink_flow(ctx: FlowContext) -> None:
    spec = ctx.target.sink
    assert spec is not None
    query = ctx.query()

    def write(df: DataFrame, batch_id: int) -> FlowMetrics:
        if spec.format == FOREACH_BATCH:
            assert spec.func is not None
            rows = df.count()
            spec.func(df, batch_id)
            return FlowMetrics(num_output_rows=rows)
        if "path" in spec.options:
            applied = exp.apply(df, [], ctx.target.name)  # no expectations on sinks: counts rows written
            applied.df.write.format("delta").mode("append").options(**ctx.write_options(batch_id)).save(
                sink_path(ctx.target)
            )
            return applied.metrics()
        # a catalog table: Spark's observed metrics do not survive saveAsTable's re-planning, so count first
        rows = df.count()
        writer = df.write.format("delta").mode("append").options(**ctx.write_options(batch_id))
        writer.saveAsTable(spec.options["tableName"])
        return FlowMetrics(num_output_rows=rows)

    if not ctx.flow.once:
        ctx.run_stream(query, write)
        return
    state = ctx.storage.flow_state(ctx.flow.name)
    if state.get("once_done"):
        return
    try:
        metrics = write(query, 0)
    except Exception as err:
        raise ctx.flow_error(err) from None
    metrics.batches = 1
    ctx.metrics.merge(metrics)
    ctx.storage.save_flow_state(ctx.flow.name, {**state, "once_done": True})
