"""AUTO CDC definitions: key and column lists may be Columns (`col("id")`), as Databricks allows."""

from __future__ import annotations

from pyspark.sql import functions as F

from localdlt import api, context
from localdlt.graph import PipelineGraph


def test_keys_and_column_lists_accept_col(spark):
    graph = PipelineGraph()
    with context.defining(graph, "pipeline.py"):
        api.create_streaming_table("t")
        api.create_auto_cdc_flow(
            target="t",
            source="s",
            keys=[F.col("id")],
            sequence_by=F.col("seq"),
            except_column_list=[F.col("op"), "seq"],
            stored_as_scd_type="2",
            track_history_except_column_list=[F.col("city")],
        )
    spec = graph.flows["t"].cdc
    assert spec.keys == ["id"]
    assert spec.except_column_list == ["op", "seq"]
    assert spec.track_history_except_column_list == ["city"]
    assert spec.stored_as_scd_type == 2
