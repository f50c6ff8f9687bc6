"""The `pyspark.pipelines` module as pipeline files see it (`from pyspark import pipelines as dp`), backed
by the local runtime: the current names of Databricks' Python reference. Pyspark's own module (open-source
SDP) only works inside its own graph builder, so the loader puts this one in its place while it loads
pipeline files (`localdlt.loader.dlt_module`), and puts pyspark's back after. `dp` and `dlt` define into the
same graph: one pipeline, or one file, may use both.

Not here, as in Databricks' reference: `view` (the older `dlt.view`; use `temporary_view`), `read` /
`read_stream` (use `spark.read.table` / `spark.readStream.table`), the `apply_changes*` names.
"""

from __future__ import annotations

from localdlt.api_cdc import create_auto_cdc_flow, create_auto_cdc_from_snapshot_flow
from localdlt.api_datasets import (
    append_flow,
    create_streaming_table,
    expect,
    expect_all,
    expect_all_or_drop,
    expect_all_or_fail,
    expect_or_drop,
    expect_or_fail,
    materialized_view,
    table,
    temporary_view,
)
from localdlt.api_sinks import create_sink, foreach_batch_sink

__all__ = [
    "append_flow",
    "create_auto_cdc_flow",
    "create_auto_cdc_from_snapshot_flow",
    "create_sink",
    "create_streaming_table",
    "expect",
    "expect_all",
    "expect_all_or_drop",
    "expect_all_or_fail",
    "expect_or_drop",
    "expect_or_fail",
    "foreach_batch_sink",
    "materialized_view",
    "table",
    "temporary_view",
]
