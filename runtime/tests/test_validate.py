"""`localdlt.validate`: every definition error of a pipeline at once, without running a flow or writing
anything; an update (`run_update`) still stops at the first error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from localdlt.validate import validate
from pipeline_run import PipelineRun

WRONG_TARGETS = """
@dlt.append_flow(target="nowhere")
def lost():
    return spark.readStream.format("rate").load()

dlt.create_streaming_table("orphan")

@dlt.table
def numbers():
    return spark.range(3)

@dlt.append_flow(target="numbers_stream", name="same_name")
def first():
    return spark.readStream.format("rate").load()

@dlt.append_flow(target="numbers_stream", name="same_name")
def second():
    return spark.readStream.format("rate").load()

dlt.create_streaming_table("numbers_stream")

@dlt.view
def reads_orphan():
    return dlt.read("orphan")

@dlt.table
def reads_view():
    return dlt.read("reads_orphan")

@dlt.table
def not_a_frame():
    return 42
"""


def test_errors_of_loading_and_of_analysis_are_all_collected(pipeline: PipelineRun) -> None:
    source = pipeline.write("wrong.py", WRONG_TARGETS)
    result = validate([source], spark=pipeline.spark, storage=pipeline.storage)
    errors = result.errors
    assert any("Flow 'lost'" in e and "'nowhere', which is not defined" in e for e in errors), errors
    assert any("Flow 'same_name' is defined twice" in e for e in errors), errors
    assert any("Table 'orphan'" in e and "has no flow writing to it" in e for e in errors), errors
    assert any("not_a_frame" in e and "must return a Spark DataFrame, got int" in e for e in errors), errors
    # the view and the table reading the failed table are left out without errors of their own
    assert not any("reads_orphan" in e or "reads_view" in e for e in errors), errors
    assert len(errors) == 4, errors
    assert all(str(source) in e for e in errors if "Flow 'same_name'" not in e), errors
    assert not result.ok and not pipeline.storage.exists()  # nothing written


def test_a_valid_pipeline_is_counted_and_nothing_is_written(pipeline: PipelineRun, tmp_path: Path) -> None:
    source = pipeline.write(
        "fine.py",
        """
        @dlt.view
        def base():
            return spark.range(5).withColumn("setting", F.lit(spark.conf.get("my.setting")))

        @dlt.table(comment="doubles")
        @dlt.expect_or_drop("small", "id < 4")
        def doubled():
            return dlt.read("base").select((F.col("id") * 2).alias("id"), "setting")

        @dlt.append_flow(target="stream")
        def into_stream():
            return spark.readStream.format("rate").load()

        dlt.create_streaming_table("stream")
        """,
    )
    result = validate([source], conf={"my.setting": "x"}, spark=pipeline.spark, storage=tmp_path / "none")
    assert result.ok, result.errors
    assert (result.datasets, result.flows) == (3, 2) and result.summary() == "3 datasets, 2 flows"
    assert not (tmp_path / "none").exists()
    assert pipeline.spark.conf.get("my.setting", None) is None  # the configuration is put back


def test_an_update_still_stops_at_the_first_error(pipeline: PipelineRun) -> None:
    source = pipeline.write("wrong.py", WRONG_TARGETS)
    result: Any = pipeline.run(source)
    assert result.state == "FAILED"
    error = str(result.error)  # the duplicate flow, found while loading: nothing after it is looked at
    assert "Flow 'same_name' is defined twice" in error and "lost" not in error and "orphan" not in error


DEFINITION_ERRORS_IN_ONE_FILE = """
from pyspark import pipelines as dp

@dlt.table(schema="id INT,, name")
def bad_schema():
    return spark.range(3)

dp.create_sink("events_out", "kafka", {"kafka.bootstrap.servers": "nowhere:9092"})

@dlt.expect_or_drop("", "id > 0")
@dlt.table
def unnamed_rule():
    return spark.range(3)

@dp.materialized_view
def fine():
    return spark.range(3).selectExpr("id", "missing_column")
"""


def test_every_wrong_definition_of_a_file_is_reported_and_the_rest_of_it_still_analysed(
    pipeline: PipelineRun,
) -> None:
    source = pipeline.write("several.py", DEFINITION_ERRORS_IN_ONE_FILE)
    result = validate([source], spark=pipeline.spark)
    errors = result.errors
    lines = {int(e.split(":")[1]) for e in errors if e.startswith(f"{source}:") and e.split(":")[1].isdigit()}
    assert any("schema of dataset 'bad_schema' is not valid DDL" in e for e in errors), errors
    assert any("kafka" in e.lower() and "events_out" in e for e in errors), errors
    assert any("an expectation needs a non-empty name" in e for e in errors), errors
    # the last dataset, defined after three wrong definitions, is still loaded and analysed
    assert any("fine" in e and "missing_column" in e for e in errors), errors
    assert len(errors) == 4, errors
    written = source.read_text().splitlines()
    calls = {
        n for n, text in enumerate(written, 1) if text.startswith(("dp.create_sink", "@dlt.expect_or_drop"))
    }
    assert lines == calls, errors  # an error found while the file loads names the line of its call
