"""Mistakes in pipeline source are reported with the file/dataset at fault, before any data is written."""

from __future__ import annotations

import pytest


def _assert_nothing_written(pipeline):
    tables = pipeline.storage / "tables"
    assert not tables.exists() or not any(tables.iterdir())


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            """
            import dlt

            ROWS = 3  # a file that defines nothing: Databricks refuses such a pipeline
            """,
            "The pipeline defines no dataset (NO_TABLES_IN_PIPELINE)",
        ),
        (
            """
            @dlt.table(name="dup")
            def a():
                return spark.range(1)

            @dlt.table(name="dup")
            def b():
                return spark.range(1)
            """,
            "Dataset 'dup' is defined twice",
        ),
        (
            """
            @dlt.table
            def reader():
                return dlt.read("missing")
            """,
            "'reader' reads dataset 'missing', which is not defined",
        ),
        (
            """
            @dlt.table
            def a():
                return dlt.read("b")

            @dlt.table
            def b():
                return dlt.read("a")
            """,
            "Dependency cycle between datasets: a -> b -> a",
        ),
        (
            """
            @dlt.table
            def not_a_frame():
                return [1, 2, 3]
            """,
            "must return a Spark DataFrame, got list",
        ),
        (
            """
            @dlt.table
            @dlt.expect("valid_price", "price > 0")
            def no_price():
                return spark.range(3)
            """,
            "Expectation 'valid_price' on dataset 'no_price' is not a valid constraint",
        ),
        (
            """
            @dlt.table
            @dlt.expect("broken", "id >")
            def bad_sql():
                return spark.range(3)
            """,
            "Expectation 'broken' on dataset 'bad_sql' is not a valid constraint",
        ),
        (
            """
            @dlt.table(table_properties={"pipelines.unknownThing": "1"})
            def props():
                return spark.range(3)
            """,
            "Unknown table property 'pipelines.unknownThing' on dataset 'props'",
        ),
        (
            """
            @dlt.table(table_properties={"delta.notARealProperty": "1"})
            def delta_props():
                return spark.range(3)
            """,
            "Cannot set up table 'delta_props'",
        ),
        (
            """
            @dlt.table(row_filter="ROW FILTER f ON (id)")
            def filtered():
                return spark.range(3)
            """,
            "Parameter 'row_filter' of dataset 'filtered' is not supported",
        ),
        (
            """
            @dlt.table(cluster_by=["nope"])
            def clustered():
                return spark.range(3)
            """,
            "cluster_by of dataset 'clustered' names column(s) ['nope']",
        ),
        (
            """
            dlt.create_streaming_table("target")
            """,
            "Table 'target'",
        ),
        (
            """
            @dlt.table
            def batch_into_stream():
                return spark.range(3)

            @dlt.append_flow(target="batch_into_stream")
            def extra():
                return spark.range(3)
            """,
            "Materialized view 'batch_into_stream' can have only one flow",
        ),
        (
            """
            @dlt.view
            def snap():
                return spark.range(3)

            dlt.create_streaming_table("mixed")
            dlt.apply_changes_from_snapshot(target="mixed", source="snap", keys=["id"])

            @dlt.append_flow(target="mixed")
            def more():
                return spark.readStream.format("rate").load().selectExpr("value AS id")
            """,
            "snapshot target must have that one flow only",
        ),
        (
            """
            from pyspark.sql.datasource import DataSource

            class Unreachable(DataSource):
                @classmethod
                def name(cls):
                    return "unreachable_src"

                def schema(self):
                    raise ConnectionError("source db1:5432 refused the login (secret KPassword)")

            spark.dataSource.register(Unreachable)

            @dlt.table
            def from_source():
                return spark.read.format("unreachable_src").load()
            """,
            "ConnectionError: source db1:5432 refused the login (secret KPassword)",
        ),
    ],
    ids=[
        "no-dataset",
        "duplicate",
        "unknown",
        "cycle",
        "not-dataframe",
        "unknown-column",
        "bad-sql",
        "unknown-property",
        "unknown-delta-property",
        "row-filter",
        "cluster-column",
        "no-flow",
        "two-flows-into-mv",
        "snapshot-and-append-into-one-target",
        "python-data-source-error-not-cut-at-its-traceback",
    ],
)
def test_definition_errors_fail_the_update_before_writing(pipeline, code, message):
    pipeline.write("bad.py", code)
    result = pipeline.run()
    assert result.state == "FAILED"
    assert message in str(result.error)
    _assert_nothing_written(pipeline)
    final = pipeline.events().where("event_type = 'update_progress'").orderBy("sequence.control_plane_seq_no")
    last = final.collect()[-1]
    assert '"FAILED"' in last.details and last.level == "ERROR"
    assert message in last.error.exceptions[0].message


def test_a_file_that_fails_to_import_is_named(pipeline):
    path = pipeline.write(
        "broken.py",
        """
        x = 1
        raise ValueError("bad config value")
        """,
    )
    result = pipeline.run()
    assert not result.ok
    assert f"{path}:5" in str(result.error) and "ValueError: bad config value" in str(result.error)


def test_dlt_is_only_the_runtime_api_while_pipelines_run(pipeline):
    import sys

    pipeline.write("t.py", "@dlt.table\ndef t():\n    return spark.range(1)\n")
    assert pipeline.run().ok
    assert "dlt" not in sys.modules
