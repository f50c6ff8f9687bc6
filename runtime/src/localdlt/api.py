"""The `dlt` API as pipeline files see it (`import dlt`), backed by the local runtime.

Names and parameters follow Databricks' Python reference for declarative pipelines. The loader puts this
module in `sys.modules["dlt"]` only while it loads and runs pipeline files, so PyPI's unrelated `dlt`
package is neither installed nor shadowed for other code. Tables, views, flows, reads and expectations are
defined in `localdlt.api_datasets`, the AUTO CDC flows in `localdlt.api_cdc`, sinks in `localdlt.api_sinks`.
The current names (`from pyspark import pipelines as dp`) are in `localdlt.api_pipelines`.
"""

from __future__ import annotations

from localdlt.api_cdc import (
    apply_changes,
    apply_changes_from_snapshot,
    create_auto_cdc_flow,
    create_auto_cdc_from_snapshot_flow,
)
from localdlt.api_datasets import (
    append_flow,
    create_streaming_table,
    create_target_table,
    expect,
    expect_all,
    expect_all_or_drop,
    expect_all_or_fail,
    expect_or_drop,
    expect_or_fail,
    materialized_view,
    read,
    read_stream,
    table,
    temporary_view,
    view,
)
from localdlt.api_sinks import create_sink, foreach_batch_sink

__all__ = [
    "append_flow",
    "apply_changes",
    "apply_changes_from_snapshot",
    "create_auto_cdc_flow",
    "create_auto_cdc_from_snapshot_flow",
    "create_sink",
    "create_streaming_table",
    "create_target_table",
    "expect",
    "expect_all",
    "expect_all_or_drop",
    "expect_all_or_fail",
    "expect_or_drop",
    "expect_or_fail",
    "foreach_batch_sink",
    "materialized_view",
    "read",
    "read_stream",
    "table",
    "temporary_view",
    "view",
]
