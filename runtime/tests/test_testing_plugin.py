"""localdlt's pytest plugin (`localdlt.testing`): the two pipelines of test_current_api (one written with
`dp` names only, one with `dlt` names only) run through its fixtures on rows the tests give in place of
their `raw` source; a chosen subset of datasets; a second, incremental update; and the errors of a wrong
input or a read of a dataset the run leaves out."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from localdlt.errors import DefinitionError
from localdlt.testing import ExpectationCounts, LocalPipeline, PipelineResult
from test_current_api import DLT_PIPELINE, DP_PIPELINE

SCHEMA = "id INT, amount DOUBLE"
NOWHERE = "/nonexistent/localdlt-source"  # the pipelines' own source: never read, `raw` is given


def _write(root: Path, name: str, code: str) -> Path:
    path = root / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(code)
    return path


def _ok(result: PipelineResult) -> PipelineResult:
    assert result.ok, result.error
    return result


def _one_line_error(result: PipelineResult) -> str:
    assert not result.ok
    assert isinstance(result.error, DefinitionError), result.error
    text = str(result.error)
    assert "\n" not in text, text
    return text


# ---------------------------------------------------------------------------------------- dp pipeline
@pytest.fixture(scope="module")
def dp(localdlt_spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The dp pipeline: a first update on two rows, then a second one on one more."""
    root = tmp_path_factory.mktemp("plugin_dp")
    sink, calls = root / "sink", root / "calls.jsonl"
    source = _write(root, "dp_pipeline.py", DP_PIPELINE.format(sink=sink, src=NOWHERE, calls=calls))
    pipeline = LocalPipeline(localdlt_spark, root)
    first = _ok(pipeline.run(source, inputs={"raw": [(1, 1.0), (2, 2.5)]}, schemas={"raw": SCHEMA}))
    out: dict[str, Any] = {"pipeline": pipeline, "calls": calls, "first": first}
    for name in ("totals", "events", "delta_sink", "raw"):
        out[f"first_{name}"] = first.rows(name)
    # the input's schema is remembered: plain tuples need it only once
    out["second"] = _ok(pipeline.run(source, inputs={"raw": [(3, 4.0)]}))
    return out


def test_dp_pipeline_on_given_rows_fills_its_tables_with_generated_columns(dp):
    assert dp["first_raw"] == [(1, 1.0), (2, 2.5)]  # the private table holds the rows given
    assert dp["first_totals"] == [(1, 1.0, 2.0), (2, 2.5, 5.0)]  # batch read: spark.read.table("raw")
    assert dp["first_events"] == [(1, 1.0, "small"), (2, 2.5, "big")]  # stream: spark.readStream.table
    assert dp["first_delta_sink"] == [(2, 2.5, "dp")]  # through the streaming view `big`
    assert not (dp["pipeline"].storage / "tables" / "raw").exists()  # still private
    with pytest.raises(LookupError, match="'big' is a view"):
        dp["first"].table("big")


def test_dp_pipeline_second_update_takes_only_the_new_rows(dp):
    second = dp["second"]
    assert second.rows("raw") == [(1, 1.0), (2, 2.5), (3, 4.0)]
    assert second.rows("totals", "id", "doubled") == [(1, 2.0), (2, 5.0), (3, 8.0)]  # recomputed
    assert second.rows("events", "id", "size") == [(1, "small"), (2, "big"), (3, "big")]
    assert second.rows("delta_sink", "id", "tag") == [(2, "dp"), (3, "dp")]  # appended once each
    calls = [json.loads(line) for line in dp["calls"].read_text().splitlines()]
    assert calls == [[0, [1, 2]], [1, [3]]]  # the foreach_batch sink saw each row once
    assert dp["first"].update.flows["to_sink"].metrics.num_output_rows == 1
    assert second.update.flows["to_sink"].metrics.num_output_rows == 1


def test_dp_pipeline_event_log(dp):
    first, second = dp["first"], dp["second"]
    definitions = {d["flow_name"]: d for d in first.events("flow_definition")}
    assert definitions["raw"]["private"] is True  # the input keeps the dataset's privacy
    assert definitions["raw"]["dataset_type"] == "STREAMING_TABLE"
    assert definitions["to_sink"]["dataset_type"] == "SINK"
    assert definitions["totals"]["table_constraints"] == ["CONSTRAINT totals_pk PRIMARY KEY (id)"]
    states = [e["state"] for e in second.events("update_progress")]
    assert states[0] == "INITIALIZING" and states[-1] == "COMPLETED"
    completed = {
        e["flow_name"]: e["metrics"]["num_output_rows"]
        for e in second.events("flow_progress")
        if e["status"] == "COMPLETED"
    }
    assert completed["raw"] == 1 and completed["events_flow"] == 1 and completed["totals"] == 3
    log = first.event_log  # the whole log: both updates
    assert {r.origin.update_id for r in log.select("origin").collect()} == {
        first.update.update_id,
        second.update.update_id,
    }
    assert first.expectations == {}  # the pipeline has none


# --------------------------------------------------------------------------------------- dlt pipeline
@pytest.fixture(scope="module")
def dlt(localdlt_spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The dlt pipeline, its `raw` given as a DataFrame."""
    root = tmp_path_factory.mktemp("plugin_dlt")
    table = f"localdlt_plugin_sink_{uuid.uuid4().hex[:8]}"
    source = _write(root, "dlt_pipeline.py", DLT_PIPELINE.format(table=table, src=NOWHERE))
    given = localdlt_spark.createDataFrame([(1, 1.5), (2, 2.0), (1, 3.0)], SCHEMA)
    result = _ok(LocalPipeline(localdlt_spark, root).run(source, inputs={"raw": given}))
    yield {"result": result, "table": table, "source": source}
    localdlt_spark.sql(f"DROP TABLE IF EXISTS {table}")


def test_dlt_pipeline_on_a_given_dataframe(dlt):
    result = dlt["result"]
    assert result.rows("priced", "id", "cents") == [(1, 150), (1, 300), (2, 200)]  # dlt.read_stream
    assert result.rows("older_temporary") == [(3,)]  # dlt.read: a batch count of the input
    assert result.rows("cdc_target") == [(1, 3.0), (2, 2.0)]  # AUTO CDC from the input: latest per key
    # the sink by table name: the live rows and the once=True backfill
    assert result.rows("table_sink") == [(1, 1.5), (1, 3.0), (2, 2.0), (100, 0.5)]
    assert result.rows("table_sink") == result.rows("table_sink", "id", "amount")
    assert result.update.flows["backfill"].metrics.num_output_rows == 1
    assert result.expectations == {}
    definitions = {d["flow_name"]: d for d in result.events("flow_definition")}
    assert definitions["raw"]["private"] and definitions["older_temporary"]["private"]
    assert not definitions["priced"]["private"]


def test_a_subset_runs_only_the_chosen_datasets(localdlt_spark, tmp_path, dlt):
    pipeline = LocalPipeline(localdlt_spark, tmp_path)
    result = _ok(
        pipeline.run(dlt["source"], {"raw": [(7, 0.07)]}, schemas={"raw": SCHEMA}, datasets=["priced"])
    )
    assert result.rows("priced") == [(7, 0.07, 7)]
    assert set(result.update.flows) == {"raw", "priced"}
    assert {d["flow_name"] for d in result.events("flow_definition")} == {"raw", "priced"}
    tables = {p.name for p in (pipeline.storage / "tables").iterdir()}
    assert tables == {"priced"}  # nor the CDC target, nor the sink's backfill
    with pytest.raises(
        LookupError, match="'cdc_target' is not a dataset of this run; its datasets are: priced"
    ):
        result.table("cdc_target")


@pytest.mark.parametrize(
    ("which", "datasets", "message"),
    [
        ("dlt", ["older_temporary"], "'older_temporary' reads 'raw', which this run leaves out"),
        ("dp", ["totals"], "'totals' reads 'raw', which this run leaves out"),
        ("dlt", ["cdc_target"], "'cdc_target' reads 'raw', which this run leaves out"),
    ],
)
def test_reading_a_dataset_neither_selected_nor_given_fails_naming_it(
    localdlt_spark, tmp_path, dlt, dp, which, datasets, message
):
    source = dlt["source"] if which == "dlt" else next((dp["pipeline"].root / "src").iterdir())
    result = LocalPipeline(localdlt_spark, tmp_path).run(source, datasets=datasets)
    text = _one_line_error(result)
    assert message in text and f"datasets: {datasets[0]}" in text, text
    errors = [e for e in result.events("update_progress") if e["state"] == "FAILED"]
    assert errors and errors[0]["level"] == "ERROR"


@pytest.mark.parametrize(
    ("inputs", "datasets", "message"),
    [
        (
            {"nope": [(1, 1.0)]},
            None,
            "Input 'nope' is not a dataset of this pipeline; its datasets are: cdc_target, older_temporary, "
            "priced, raw, table_sink.",
        ),
        ({}, ["priced", "nope"], "Selected dataset 'nope' is not a dataset of this pipeline"),
        ({"table_sink": [(1, 1.0)]}, None, "Input 'table_sink' is a sink"),
    ],
)
def test_an_unknown_input_or_dataset_fails_naming_it(
    localdlt_spark, tmp_path, dlt, inputs, datasets, message
):
    result = LocalPipeline(localdlt_spark, tmp_path).run(
        dlt["source"], inputs, schemas={"nope": SCHEMA, "table_sink": SCHEMA}, datasets=datasets
    )
    assert message in _one_line_error(result)
    assert not (tmp_path / "storage" / "tables").exists()  # refused before anything ran


# ------------------------------------------------------------------------------------- expectations
QUALITY = """
from pyspark import pipelines as dp

@dp.table
def readings():
    return spark.readStream.format("delta").load("/nonexistent/readings")

@dp.temporary_view
@dp.expect_or_drop("has_id", "id IS NOT NULL")
def cleaned():
    return spark.readStream.table("readings")

@dp.table
@dp.expect("small", "amount < 10")
def checked():
    return spark.readStream.table("cleaned")
"""


@pytest.fixture(scope="module")
def quality(localdlt_spark: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[PipelineResult, ...]:
    root = tmp_path_factory.mktemp("plugin_quality")
    source = _write(root, "quality.py", QUALITY)
    pipeline = LocalPipeline(localdlt_spark, root)
    given = [(1, 1.0), (None, 2.0), (3, 30.0)]
    first = _ok(pipeline.run(source, {"readings": given}, schemas={"readings": SCHEMA}))
    second = _ok(pipeline.run(source, {"readings": [(4, 40.0), (5, 50.0)]}))
    # no inputs named: `readings` stays replaced by the rows given so far
    refresh = _ok(pipeline.run(source, full_refresh=["checked"], conf={"quality.run": "3"}))
    return first, second, refresh


def test_expectation_counts_per_update(quality):
    first, second, _ = quality
    assert first.expectations == {"cleaned": {"has_id": (2, 1)}, "checked": {"small": (1, 1)}}
    assert first.dropped_records == {"checked": 1}
    assert second.expectations == {"cleaned": {"has_id": (2, 0)}, "checked": {"small": (0, 2)}}
    assert second.expectations["checked"]["small"] == ExpectationCounts(passed=0, failed=2)
    assert second.rows("checked", "id") == [(1,), (3,), (4,), (5,)]


def test_a_full_refresh_of_one_table_reads_every_row_given_again(quality):
    refresh = quality[2]
    assert refresh.expectations == {"cleaned": {"has_id": (4, 1)}, "checked": {"small": (1, 3)}}
    assert refresh.rows("checked", "id") == [(1,), (3,), (4,), (5,)]  # not appended twice
    assert refresh.rows("readings", "id") == [(None,), (1,), (3,), (4,), (5,)]  # not refreshed
    created = refresh.events("create_update")[0]
    assert created["full_refresh_selection"] == ["checked"] and created["config"] == {"quality.run": "3"}
