"""Datasets through the local runtime: materialized views, streaming tables, views, flows, parameters."""

from __future__ import annotations

import json
from pathlib import Path

from delta.tables import DeltaTable


def test_materialized_view_is_recomputed_each_update(pipeline):
    src = pipeline.append_source("items", [(1, "a"), (2, "b")], "id INT, name STRING")
    pipeline.write(
        "items.py",
        f"""
        @dlt.table(comment="all items")
        def items():
            return spark.read.format("delta").load("{src}")
        """,
    )
    assert pipeline.run().ok
    pipeline.append_source("items", [(3, "c")], "id INT, name STRING")
    result = pipeline.run()
    assert result.ok
    assert pipeline.rows("items") == [(1, "a"), (2, "b"), (3, "c")]  # replaced, not appended
    assert result.flows["items"].metrics.num_output_rows == 3
    detail = DeltaTable.forPath(pipeline.spark, str(pipeline.storage / "tables" / "items")).detail().first()
    assert detail.description == "all items"


def test_streaming_table_processes_only_new_input(pipeline):
    src = pipeline.append_source("orders", [(1,), (2,)], "id INT")
    pipeline.write(
        "orders.py",
        f"""
        @dlt.table
        def orders():
            return spark.readStream.format("delta").load("{src}")
        """,
    )
    first = pipeline.run()
    assert first.ok and first.flows["orders"].metrics.num_output_rows == 2
    pipeline.append_source("orders", [(3,)], "id INT")
    second = pipeline.run()
    assert second.flows["orders"].metrics.num_output_rows == 1
    assert pipeline.rows("orders") == [(1,), (2,), (3,)]
    third = pipeline.run()  # nothing new: nothing written, nothing doubled
    assert third.flows["orders"].metrics.num_output_rows == 0
    assert pipeline.rows("orders") == [(1,), (2,), (3,)]


def test_views_are_not_persisted_and_reads_follow_dependencies(pipeline):
    pipeline.write(
        "graph.py",
        """
        @dlt.table
        def counts():
            # defined first, reads a view defined later: order follows reads, not the file
            return spark.read.table("LIVE.evens").groupBy("parity").count()

        @dlt.view
        def evens():
            return dlt.read("numbers").where("id % 2 = 0").withColumn("parity", F.lit("even"))

        @dlt.table
        def numbers():
            return spark.range(10)
        """,
    )
    result = pipeline.run()
    assert result.ok, result.error
    assert pipeline.rows("counts") == [("even", 5)]
    assert not (pipeline.storage / "tables" / "evens").exists()
    lineage = {
        json.loads(r.details)["flow_definition"]["output_dataset"]: json.loads(r.details)["flow_definition"][
            "input_datasets"
        ]
        for r in pipeline.events().where("event_type = 'flow_definition'").collect()
    }
    assert lineage == {"counts": ["evens"], "numbers": []}


def test_append_flows_feed_one_target_and_once_flows_run_once(pipeline):
    a = pipeline.append_source("a", [(1, "a")], "id INT, src STRING")
    b = pipeline.append_source("b", [(2, "b")], "id INT, src STRING")
    pipeline.write(
        "union.py",
        f"""
        dlt.create_streaming_table("all_rows")

        @dlt.append_flow(target="all_rows")
        def from_a():
            return spark.readStream.format("delta").load("{a}")

        @dlt.append_flow(target="all_rows", name="from_b")
        def b_flow():
            return spark.readStream.format("delta").load("{b}")

        @dlt.append_flow(target="all_rows", once=True)
        def backfill():
            return spark.createDataFrame([(0, "backfill")], "id INT, src STRING")
        """,
    )
    assert pipeline.run().ok
    pipeline.append_source("b", [(3, "b")], "id INT, src STRING")
    result = pipeline.run()
    assert result.ok
    assert pipeline.rows("all_rows") == [(0, "backfill"), (1, "a"), (2, "b"), (3, "b")]
    assert result.flows["backfill"].metrics.num_output_rows == 0
    full = pipeline.run(full_refresh=True)  # the once flow runs again after a full refresh
    assert full.flows["backfill"].metrics.num_output_rows == 1
    assert pipeline.rows("all_rows") == [(0, "backfill"), (1, "a"), (2, "b"), (3, "b")]


def test_table_parameters_reach_the_delta_table(pipeline, tmp_path: Path):
    custom = tmp_path / "elsewhere" / "by_path"
    pipeline.write(
        "params.py",
        f"""
        @dlt.table(
            table_properties={{"quality": "bronze", "delta.enableChangeDataFeed": "true",
                               "pipelines.autoOptimize.zOrderCols": "id"}},
            cluster_by=["id"],
        )
        def clustered():
            return spark.range(3)

        @dlt.table(partition_cols=["day"])
        def partitioned():
            return spark.range(3).withColumn("day", F.lit("2026-01-01"))

        @dlt.table(schema="id BIGINT, label STRING NOT NULL")
        def typed():
            return spark.range(2).select(F.col("id").cast("int").alias("id"), F.lit("x").alias("label"))

        @dlt.table(path="{custom}")
        def by_path():
            return spark.range(1)

        @dlt.table(spark_conf={{"my.flag": "on"}})
        def with_conf():
            return spark.range(1).withColumn("flag", F.lit(spark.conf.get("my.flag")))

        @dlt.table(temporary=True)
        def scratch():
            return spark.range(2)

        @dlt.table
        def from_scratch():
            return dlt.read("scratch")

        @dlt.table
        def from_configuration():
            return spark.range(1).withColumn("env", F.lit(spark.conf.get("my.env")))
        """,
    )
    result = pipeline.run(conf={"my.env": "test"})
    assert result.ok, result.error
    spark = pipeline.spark
    detail = DeltaTable.forPath(spark, str(pipeline.storage / "tables" / "clustered")).detail().first()
    assert detail.clusteringColumns == ["id"]
    assert detail.properties["quality"] == "bronze"
    assert detail.properties["delta.enableChangeDataFeed"] == "true"
    part = DeltaTable.forPath(spark, str(pipeline.storage / "tables" / "partitioned")).detail().first()
    assert part.partitionColumns == ["day"]
    typed = pipeline.table("typed")
    assert typed.schema.simpleString() == "struct<id:bigint,label:string>"
    assert spark.read.format("delta").load(str(custom)).count() == 1
    assert pipeline.rows("with_conf", "flag") == [("on",)]
    assert pipeline.rows("from_configuration", "env") == [("test",)]
    assert spark.conf.get("my.flag", "unset") == "unset"  # a flow's spark_conf stays in that flow
    # a temporary table is used by the pipeline but not published with the others
    assert not (pipeline.storage / "tables" / "scratch").exists()
    assert (pipeline.storage / "temporary" / "scratch" / "_delta_log").is_dir()
    assert pipeline.rows("from_scratch") == [(0,), (1,)]


def test_full_refresh_resets_streaming_tables_except_when_disallowed(pipeline):
    src = pipeline.append_source("events", [(1,), (2,)], "id INT")
    pipeline.write(
        "refresh.py",
        f"""
        @dlt.table
        def resettable():
            return spark.readStream.format("delta").load("{src}")

        @dlt.table(table_properties={{"pipelines.reset.allowed": "false"}})
        def kept():
            return spark.readStream.format("delta").load("{src}")
        """,
    )
    assert pipeline.run().ok
    # simulate rows that exist only in bronze (e.g. the source was purged): a reset would lose them
    pipeline.spark.createDataFrame([(99,)], "id INT").write.format("delta").mode("append").save(
        str(pipeline.storage / "tables" / "kept")
    )
    result = pipeline.run(full_refresh=True)
    assert result.ok
    assert pipeline.rows("resettable") == [(1,), (2,)]  # truncated and re-read once: no duplicates
    assert pipeline.rows("kept") == [(1,), (2,), (99,)]
    warned = pipeline.events().where("event_type = 'user_action'").collect()
    assert any("kept" in r.message for r in warned)


def test_full_refresh_of_chosen_tables_only(pipeline):
    src = pipeline.append_source("e", [(1,)], "id INT")
    pipeline.write(
        "two.py",
        f"""
        @dlt.table
        def one():
            return spark.readStream.format("delta").load("{src}")

        @dlt.table
        def two():
            return spark.readStream.format("delta").load("{src}")
        """,
    )
    assert pipeline.run().ok
    for table in ("one", "two"):
        pipeline.spark.createDataFrame([(50,)], "id INT").write.format("delta").mode("append").save(
            str(pipeline.storage / "tables" / table)
        )
    assert pipeline.run(full_refresh_tables=["one"]).ok
    assert pipeline.rows("one") == [(1,)]
    assert pipeline.rows("two") == [(1,), (50,)]
    bad = pipeline.run(full_refresh_tables=["nope"])
    assert not bad.ok and "nope" in str(bad.error)


def test_a_view_read_by_two_flows_is_computed_once_per_update(pipeline):
    """Both tables see the same rows of a view that several flows read (a source queried once), and the
    next update computes it afresh."""
    pipeline.write(
        "shared.py",
        """
        from pyspark.sql import functions as F

        @dlt.view
        def stamped():
            return spark.range(3).select("id", F.expr("uuid()").alias("u"))

        @dlt.table
        def left():
            return dlt.read("stamped")

        @dlt.table
        def right():
            return dlt.read("stamped").where("id >= 0")
        """,
    )
    assert pipeline.run().ok
    first = pipeline.rows("left")
    assert first == pipeline.rows("right") and len({u for _, u in first}) == 3
    assert pipeline.run().ok
    assert pipeline.rows("left") == pipeline.rows("right") and pipeline.rows("left") != first


def test_a_pipelines_configuration_does_not_outlive_its_update(pipeline):
    """Settings reach the pipeline's code during its update (with its storage), then the session is as it
    was: on Databricks each pipeline has a session of its own."""
    pipeline.write(
        "settings.py",
        """
        @dlt.table
        def settings():
            return spark.createDataFrame(
                [(spark.conf.get("my.setting", "absent"), spark.conf.get("pipelines.storage"))], "value STRING, storage STRING"
            )
        """,
    )
    spark = pipeline.spark
    spark.conf.unset("my.setting")
    assert pipeline.run(conf={"my.setting": "given"}).ok
    assert pipeline.rows("settings") == [("given", str(pipeline.storage.resolve()))]
    assert spark.conf.get("my.setting", None) is None and spark.conf.get("pipelines.storage", None) is None
    assert pipeline.run().ok  # a later update without the setting does not see the earlier one's
    assert pipeline.rows("settings") == [("absent", str(pipeline.storage.resolve()))]
