"""Expectations: warn keeps and counts, drop removes and counts, fail stops the flow and commits nothing."""

from __future__ import annotations

import json


def _quality(pipeline, flow):
    rows = (
        pipeline.events()
        .where(f"event_type = 'flow_progress' AND origin.flow_name = '{flow}'")
        .where("get_json_object(details, '$.flow_progress.status') = 'COMPLETED'")
        .orderBy("sequence.control_plane_seq_no")
        .collect()
    )
    return json.loads(rows[-1].details)["flow_progress"]


def test_warn_drop_and_null_counts(pipeline):
    pipeline.write(
        "quality.py",
        """
        @dlt.table
        @dlt.expect("has_name", "name IS NOT NULL")
        @dlt.expect_or_drop("positive_qty", "qty > 0")
        @dlt.expect_all({"short_name": "length(name) < 5"})
        @dlt.expect_all_or_drop({"known_id": "id < 100"})
        def items():
            return spark.createDataFrame(
                [(1, "ok", 5), (2, None, 5), (3, "ok", -1), (4, "ok", None), (200, "toolong", 1)],
                "id INT, name STRING, qty INT",
            )
        """,
    )
    result = pipeline.run()
    assert result.ok, result.error
    # NULL qty counts as a failure and is dropped; a NULL name fails has_name but is kept (warn)
    assert pipeline.rows("items", "id") == [(1,), (2,)]
    progress = _quality(pipeline, "items")
    assert progress["metrics"]["num_output_rows"] == 2
    dq = progress["data_quality"]
    assert dq["dropped_records"] == 3
    by_name = {e["name"]: (e["passed_records"], e["failed_records"]) for e in dq["expectations"]}
    assert by_name == {
        "has_name": (4, 1),
        "positive_qty": (3, 2),
        "short_name": (3, 2),  # NULL name -> NULL result -> failure; "toolong" fails
        "known_id": (4, 1),
    }
    assert {e["dataset"] for e in dq["expectations"]} == {"items"}


def test_fail_expectation_stops_its_flow_only_and_commits_nothing(pipeline):
    src = pipeline.append_source("readings", [(1, 10), (2, 20)], "id INT, value INT")
    pipeline.write(
        "fail.py",
        f"""
        @dlt.table
        @dlt.expect_or_fail("value_in_range", "value < 100")
        def readings():
            return spark.readStream.format("delta").load("{src}")

        @dlt.table
        def independent():
            return spark.range(3)

        @dlt.table
        def downstream():
            return dlt.read("readings")
        """,
    )
    assert pipeline.run().ok
    pipeline.append_source("readings", [(3, 30), (4, 999)], "id INT, value INT")
    result = pipeline.run()
    assert result.state == "FAILED"
    outcome = result.flows["readings"]
    assert outcome.status == "FAILED"
    message = str(outcome.error)
    assert "value_in_range" in message and "'readings'" in message and '"value":999' in message
    assert result.flows["independent"].status == "COMPLETED"
    assert result.flows["downstream"].status == "SKIPPED"
    assert pipeline.rows("readings") == [(1, 10), (2, 20)]  # the failing batch left nothing behind
    failed_event = (
        pipeline.events()
        .where("event_type = 'flow_progress' AND origin.flow_name = 'readings' AND level = 'ERROR'")
        .collect()
    )
    assert failed_event and "value_in_range" in failed_event[-1].error.exceptions[0].message

    # once the bad row is gone from the input, a full refresh of that table reloads it exactly once
    pipeline.spark.sql(f"DELETE FROM delta.`{src}` WHERE value = 999")
    assert pipeline.run(full_refresh_tables=["readings"]).ok
    assert pipeline.rows("readings") == [(1, 10), (2, 20), (3, 30)]


def test_expectations_on_streaming_table_targets_and_views(pipeline):
    src = pipeline.append_source("raw", [(1, "a@x.io"), (2, "bad"), (None, "c@x.io")], "id INT, email STRING")
    pipeline.write(
        "targets.py",
        f"""
        @dlt.view
        @dlt.expect_or_drop("has_id", "id IS NOT NULL")
        def cleaned():
            return spark.readStream.format("delta").load("{src}")

        dlt.create_streaming_table("contacts", expect_all={{"email_shape": "email LIKE '%@%'"}})

        @dlt.append_flow(target="contacts")
        def load_contacts():
            return dlt.read_stream("cleaned")
        """,
    )
    result = pipeline.run()
    assert result.ok, result.error
    assert pipeline.rows("contacts") == [(1, "a@x.io"), (2, "bad")]
    exps = result.flows["load_contacts"].metrics.expectations
    assert (exps[("cleaned", "has_id")].passed_records, exps[("cleaned", "has_id")].failed_records) == (2, 1)
    assert (
        exps[("contacts", "email_shape")].failed_records,
        result.flows["load_contacts"].metrics.dropped_records,
    ) == (
        1,
        1,
    )


def test_monitoring_queries_run_unchanged_on_the_event_log(pipeline):
    from localdlt import monitoring

    pipeline.write(
        "m.py",
        """
        @dlt.table
        @dlt.expect("small", "id < 3")
        def nums():
            return spark.range(5)

        @dlt.table
        def doubled():
            return dlt.read("nums").selectExpr("id * 2 AS id")
        """,
    )
    first = pipeline.run()
    # another configuration: the views are recomputed (an update with no change would plan them as NO_OP
    # and evaluate no expectations)
    second = pipeline.run(conf={"example.run": "2"})
    events = str(pipeline.storage / "system" / "events")
    spark = pipeline.spark
    latest = monitoring.run(spark, events, "latest_update").collect()
    assert latest[0].id == second.update_id != first.update_id
    lineage = sorted(
        (r.output_dataset, tuple(r.input_dataset)) for r in monitoring.run(spark, events, "lineage").collect()
    )
    assert lineage == [("doubled", ("nums",)), ("nums", ())]
    quality = [tuple(r) for r in monitoring.run(spark, events, "data_quality").collect()]
    assert quality == [("nums", "small", 3, 2)]
    updates = monitoring.run(spark, events, "updates").collect()
    assert [u.state for u in updates] == ["COMPLETED", "COMPLETED"]


def test_expectations_of_a_snapshot_flows_source_view_are_reported(pipeline):
    """apply_changes_from_snapshot reads its source view once; the view's expectation counts reach the flow."""
    pipeline.write(
        "snapshot.py",
        """
        @dlt.view
        @dlt.expect("has_name", "name IS NOT NULL")
        @dlt.expect_or_drop("known_id", "id < 100")
        def snap():
            return spark.createDataFrame(
                [(1, "a"), (2, None), (3, "c"), (500, "d"), (600, "e")], "id INT, name STRING"
            )

        dlt.create_streaming_table("people")
        dlt.apply_changes_from_snapshot(target="people", source="snap", keys=["id"], stored_as_scd_type=1)
        """,
    )
    result = pipeline.run()
    assert result.ok, result.error
    assert pipeline.rows("people") == [(1, "a"), (2, None), (3, "c")]
    progress = _quality(pipeline, "people")
    dq = progress["data_quality"]
    assert dq["dropped_records"] == 2
    by_name = {
        (e["dataset"], e["name"]): (e["passed_records"], e["failed_records"]) for e in dq["expectations"]
    }
    assert by_name == {("snap", "has_name"): (4, 1), ("snap", "known_id"): (3, 2)}
    flow = result.flows["people"].metrics
    assert (flow.dropped_records, flow.num_upserted_rows) == (2, 3)
