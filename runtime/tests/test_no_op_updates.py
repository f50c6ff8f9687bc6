"""Updates with nothing to do: a materialized view whose inputs and definition did not change is not
recomputed (planned as NO_OP, as Databricks reports it), a streaming flow with no new input starts no
query; any change (input, code, configuration, full refresh, a write to the table) recomputes."""

from __future__ import annotations

import json
from pathlib import Path

from localdlt.freshness import delta_version

SCHEMA = "id INT, name STRING"


def _planning(pipeline, result) -> dict[str, dict]:
    """flow -> planning_information details of one update."""
    rows = (
        pipeline.events()
        .where(f"event_type = 'planning_information' AND origin.update_id = '{result.update_id}'")
        .collect()
    )
    return {r.origin.flow_name: json.loads(r.details)["planning_information"] for r in rows}


def _chosen(planning: dict) -> str:
    return next(t["maintenance_type"] for t in planning["technique_information"] if t["is_chosen"])


def _completed_message(pipeline, result, flow: str) -> tuple[str, int]:
    row = (
        pipeline.events()
        .where(
            f"event_type = 'flow_progress' AND origin.update_id = '{result.update_id}' "
            f"AND origin.flow_name = '{flow}' AND get_json_object(details, '$.flow_progress.status') "
            "= 'COMPLETED'"
        )
        .first()
    )
    return row.message, json.loads(row.details)["flow_progress"]["metrics"]["num_output_rows"]


def _landing(tmp_path: Path, first_file: str) -> Path:
    """A folder of JSON files with one row."""
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / first_file).write_text('{"id": 1}\n')
    return landing


def _items_pipeline(pipeline, src: str, where: str = "id > 0") -> None:
    pipeline.write(
        "items.py",
        f"""
        @dlt.table
        @dlt.expect("named", "name IS NOT NULL")
        def items():
            return spark.read.format("delta").load("{src}").where("{where}")

        @dlt.table
        def item_count():
            return dlt.read("items").groupBy().count()
        """,
    )


def test_materialized_view_with_unchanged_inputs_is_not_recomputed(pipeline):
    src = pipeline.append_source("items", [(1, "a"), (2, "b")], SCHEMA)
    _items_pipeline(pipeline, src)
    first = pipeline.run()
    assert first.ok, first.error
    assert _chosen(_planning(pipeline, first)["items"]) == "MAINTENANCE_TYPE_COMPLETE_RECOMPUTE"
    items = pipeline.storage / "tables" / "items"
    version = delta_version(items)

    second = pipeline.run()
    assert second.ok, second.error
    planning = _planning(pipeline, second)
    assert _chosen(planning["items"]) == "MAINTENANCE_TYPE_NO_OP"
    assert _chosen(planning["item_count"]) == "MAINTENANCE_TYPE_NO_OP"
    assert planning["items"]["source_table_information"] == [
        {"table_name": str(Path(src).resolve()), "version": delta_version(src)}
    ]
    assert delta_version(items) == version  # nothing written
    assert second.flows["items"].status == "COMPLETED"
    assert second.flows["items"].no_op_reason
    message, rows = _completed_message(pipeline, second, "items")
    assert rows == 0 and "no input changed" in message
    assert pipeline.rows("items") == [(1, "a"), (2, "b")]
    assert pipeline.rows("item_count") == [(2,)]


def test_materialized_view_is_recomputed_when_an_input_changes(pipeline):
    src = pipeline.append_source("items", [(1, "a")], SCHEMA)
    _items_pipeline(pipeline, src)
    assert pipeline.run().ok
    pipeline.append_source("items", [(2, "b")], SCHEMA)
    result = pipeline.run()
    assert result.ok, result.error
    planning = _planning(pipeline, result)
    assert _chosen(planning["items"]) == "MAINTENANCE_TYPE_COMPLETE_RECOMPUTE"
    assert planning["items"]["reason"] == "an input changed"
    assert _chosen(planning["item_count"]) == "MAINTENANCE_TYPE_COMPLETE_RECOMPUTE"  # its input was rewritten
    assert result.flows["items"].metrics.num_output_rows == 2
    assert pipeline.rows("item_count") == [(2,)]


def test_materialized_view_is_recomputed_when_its_code_or_configuration_changes(pipeline):
    src = pipeline.append_source("items", [(1, "a"), (2, "b")], SCHEMA)
    _items_pipeline(pipeline, src)
    assert pipeline.run().ok
    _items_pipeline(pipeline, src, where="id > 1")  # same inputs, another query
    result = pipeline.run()
    assert result.ok, result.error
    planning = _planning(pipeline, result)
    assert _chosen(planning["items"]) == "MAINTENANCE_TYPE_COMPLETE_RECOMPUTE"
    assert "definition" in planning["items"]["reason"]
    assert pipeline.rows("items") == [(2, "b")]
    assert pipeline.rows("item_count") == [(1,)]

    assert _chosen(_planning(pipeline, pipeline.run())["items"]) == "MAINTENANCE_TYPE_NO_OP"
    changed_conf = pipeline.run(conf={"example.setting": "x"})
    assert _chosen(_planning(pipeline, changed_conf)["items"]) == "MAINTENANCE_TYPE_COMPLETE_RECOMPUTE"


def test_materialized_view_is_recomputed_on_full_refresh_and_after_an_outside_write(pipeline):
    src = pipeline.append_source("items", [(1, "a")], SCHEMA)
    _items_pipeline(pipeline, src)
    assert pipeline.run().ok
    full = pipeline.run(full_refresh=True)
    assert full.ok, full.error
    assert _chosen(_planning(pipeline, full)["items"]) == "MAINTENANCE_TYPE_COMPLETE_RECOMPUTE"
    assert full.flows["items"].metrics.num_output_rows == 1
    chosen = pipeline.run(full_refresh_tables=["item_count"])
    planning = _planning(pipeline, chosen)
    assert _chosen(planning["items"]) == "MAINTENANCE_TYPE_NO_OP"
    assert _chosen(planning["item_count"]) == "MAINTENANCE_TYPE_COMPLETE_RECOMPUTE"

    items = str(pipeline.storage / "tables" / "items")
    pipeline.spark.sql(f"DELETE FROM delta.`{items}`")  # someone else wrote to the table
    result = pipeline.run()
    assert _chosen(_planning(pipeline, result)["items"]) == "MAINTENANCE_TYPE_COMPLETE_RECOMPUTE"
    assert pipeline.rows("items") == [(1, "a")]


def test_queries_that_cannot_be_checked_are_always_recomputed(pipeline, tmp_path: Path):
    landing = _landing(tmp_path, "a.json")
    pipeline.write(
        "other.py",
        f"""
        @dlt.table
        def from_json():
            return spark.read.format("json").schema("id INT").load("{landing}")

        @dlt.table
        def sampled():
            return spark.range(10).withColumn("r", F.rand())

        @dlt.table
        def stamped():
            return spark.range(1).withColumn("at", F.current_timestamp())

        @dlt.table
        def constant():
            return spark.range(3)
        """,
    )
    assert pipeline.run().ok
    (landing / "b.json").write_text('{"id": 2}\n')
    result = pipeline.run()
    assert result.ok, result.error
    planning = _planning(pipeline, result)
    assert _chosen(planning["from_json"]) == "MAINTENANCE_TYPE_COMPLETE_RECOMPUTE"
    assert "not a Delta table" in planning["from_json"]["reason"]
    assert "non-deterministic" in planning["sampled"]["reason"]
    assert "time" in planning["stamped"]["reason"]
    assert _chosen(planning["constant"]) == "MAINTENANCE_TYPE_NO_OP"  # a range is the same every time
    assert pipeline.rows("from_json") == [(1,), (2,)]


def test_streaming_flows_without_new_input_start_no_query(pipeline, tmp_path: Path):
    src = pipeline.append_source("events", [(1, "a")], SCHEMA)
    landing = _landing(tmp_path, "1.json")
    pipeline.write(
        "streams.py",
        f"""
        @dlt.table
        def from_delta():
            return spark.readStream.format("delta").load("{src}")

        @dlt.table
        def from_files():
            return spark.readStream.format("json").schema("id INT").load("{landing}")

        @dlt.table
        def downstream():
            return dlt.read_stream("from_delta").where("id > 0")
        """,
    )
    assert pipeline.run().ok
    checkpoints = pipeline.storage / "checkpoints"

    def batches() -> dict[str, int]:
        return {
            flow.name: sum(len(list((gen / "offsets").iterdir())) for gen in flow.iterdir())
            for flow in checkpoints.iterdir()
        }

    before = batches()
    idle = pipeline.run()
    assert idle.ok, idle.error
    for flow in ("from_delta", "from_files", "downstream"):
        assert idle.flows[flow].no_op_reason, flow
        message, rows = _completed_message(pipeline, idle, flow)
        assert rows == 0 and "no new input" in message
    assert batches() == before

    pipeline.append_source("events", [(2, "b")], SCHEMA)
    (landing / "2.json").write_text('{"id": 2}\n')
    busy = pipeline.run()
    assert busy.ok, busy.error
    assert busy.flows["from_delta"].metrics.num_output_rows == 1
    assert busy.flows["from_files"].metrics.num_output_rows == 1
    assert busy.flows["downstream"].metrics.num_output_rows == 1
    assert not busy.flows["from_delta"].no_op_reason
    assert pipeline.rows("downstream") == [(1, "a"), (2, "b")]
    assert pipeline.rows("from_files") == [(1,), (2,)]
