"""The current Python names (`from pyspark import pipelines as dp`), sinks, private tables and DDL schemas
with generated columns and key constraints, on real Spark and Delta: one pipeline written with `dp` names
only and one with `dlt` names only, each run three times (first update, new input, full refresh)."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from localdlt import UpdateOptions, run_update
from localdlt.analysis import Analyzer
from localdlt.errors import DefinitionError
from localdlt.loader import load
from localdlt.progress import ConsoleProgress
from pipeline_run import PipelineRun

SOURCE_SCHEMA = "id INT, amount DOUBLE"


def _write(root: Path, name: str, code: str) -> Path:
    path = root / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(code))
    return path


def _run(run: PipelineRun, **options: Any) -> Any:
    result = run_update(
        [str(run.root / "src")],
        run.storage,
        options=UpdateOptions(**options),
        spark=run.spark,
        progress=ConsoleProgress(quiet=True),
    )
    assert result.ok, result.error
    return result


def _rows(df: Any, *cols: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in df.select(*cols).collect())


def _events(run: PipelineRun, event_type: str) -> list[dict[str, Any]]:
    rows = run.events().where(f"event_type = '{event_type}'").collect()
    return [{**json.loads(r.details)[event_type], "_flow": r.origin.flow_name} for r in rows]


# ---------------------------------------------------------------------------------------- dp pipeline
DP_PIPELINE = """
from pyspark import pipelines as dp
from pyspark.sql import functions as F
import json

dp.create_sink("delta_sink", "delta", {{"path": "{sink}"}})

@dp.table(private=True)
def raw():
    return spark.readStream.format("delta").load("{src}")

@dp.materialized_view(
    schema="id INT, amount DOUBLE, doubled DOUBLE GENERATED ALWAYS AS (amount * 2) COMMENT 'twice', "
    "CONSTRAINT totals_pk PRIMARY KEY (id)"
)
def totals():
    return spark.read.table("raw").select("id", "amount")

dp.create_streaming_table(
    "events",
    schema="id INT, amount DOUBLE, size STRING GENERATED ALWAYS AS (CASE WHEN amount > 1 THEN 'big' ELSE 'small' END)",
)

@dp.append_flow(target="events")
def events_flow():
    return spark.readStream.table("raw")

@dp.temporary_view
def big():
    return spark.readStream.table("raw").where("amount > 1")

@dp.append_flow(target="delta_sink")
def to_sink():
    return spark.readStream.table("big").withColumn("tag", F.lit("dp"))

@dp.foreach_batch_sink(name="batches")
def record(df, batch_id):
    ids = sorted(r.id for r in df.collect())
    with open("{calls}", "a") as out:
        out.write(json.dumps([batch_id, ids]) + "\\n")

@dp.append_flow(target="batches")
def to_batches():
    return spark.readStream.table("raw")
"""


@pytest.fixture(scope="module")
def dp_run(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    run = PipelineRun(spark, tmp_path_factory.mktemp("dp"))
    src = run.append_source("readings", [(1, 1.0), (2, 2.5)], SOURCE_SCHEMA)
    sink, calls = run.root / "sink", run.root / "calls.jsonl"
    _write(run.root, "dp_pipeline.py", DP_PIPELINE.format(sink=sink, src=src, calls=calls))
    out: dict[str, Any] = {"run": run, "sink": str(sink), "calls": calls}
    out["first"] = _run(run)
    out["first_sink"] = _rows(spark.read.format("delta").load(str(sink)), "id", "tag")
    out["first_totals"] = _rows(run.table("totals"), "id", "amount", "doubled")
    run.append_source("readings", [(3, 4.0)], SOURCE_SCHEMA)
    out["second"] = _run(run)
    out["second_sink"] = _rows(spark.read.format("delta").load(str(sink)), "id", "tag")
    out["refresh"] = _run(run, full_refresh=True)
    return out


def test_dp_pipeline_datasets_private_table_and_generated_columns(dp_run):
    run = dp_run["run"]
    # the private table is materialised (read by the other datasets) but not published under tables/
    private = run.spark.read.format("delta").load(str(run.storage / "temporary" / "raw"))
    assert _rows(private, "id", "amount") == [(1, 1.0), (2, 2.5), (3, 4.0)]
    assert not (run.storage / "tables" / "raw").exists()
    # generated columns: computed by Delta on write, in a materialized view and in a streaming table
    assert dp_run["first_totals"] == [(1, 1.0, 2.0), (2, 2.5, 5.0)]
    assert _rows(run.table("totals"), "id", "doubled") == [(1, 2.0), (2, 5.0), (3, 8.0)]
    assert _rows(run.table("events"), "id", "size") == [(1, "small"), (2, "big"), (3, "big")]
    log = "".join(f.read_text() for f in (run.storage / "tables" / "totals" / "_delta_log").glob("*.json"))
    assert "delta.generationExpression" in log and "amount * 2" in log  # a real Delta generated column
    assert not (run.storage / "tables" / "big").exists()  # temporary_view: not persisted


def test_dp_pipeline_delta_sink_appends_and_full_refresh_appends_again(dp_run):
    assert dp_run["first_sink"] == [(2, "dp")]
    assert dp_run["second_sink"] == [(2, "dp"), (3, "dp")]  # only the new row
    run = dp_run["run"]
    final = _rows(run.spark.read.format("delta").load(dp_run["sink"]), "id", "tag")
    assert final == [(2, "dp"), (2, "dp"), (3, "dp"), (3, "dp")]  # not cleared: reprocessed rows again
    assert dp_run["second"].flows["to_sink"].metrics.num_output_rows == 1
    assert dp_run["refresh"].flows["to_sink"].metrics.num_output_rows == 2


def test_dp_pipeline_foreach_batch_sink_is_called_per_micro_batch(dp_run):
    calls = [json.loads(line) for line in dp_run["calls"].read_text().splitlines()]
    assert calls == [[0, [1, 2]], [1, [3]], [0, [1, 2, 3]]]  # batch ids start again after a full refresh
    assert dp_run["first"].flows["to_batches"].metrics.num_output_rows == 2


def test_dp_pipeline_event_log(dp_run):
    run = dp_run["run"]
    definitions = {d["_flow"]: d for d in _events(run, "flow_definition")}
    assert definitions["raw"]["private"] is True
    assert definitions["events_flow"]["private"] is False
    assert definitions["to_sink"]["dataset_type"] == "SINK"
    assert definitions["to_sink"]["output_dataset"] == "delta_sink"
    assert definitions["totals"]["dataset_type"] == "MATERIALIZED_VIEW"
    assert definitions["totals"]["table_constraints"] == ["CONSTRAINT totals_pk PRIMARY KEY (id)"]
    progress = [p for p in _events(run, "flow_progress") if p["_flow"] == "to_sink"]
    completed = [p for p in progress if p["status"] == "COMPLETED"]
    assert sorted(p["metrics"]["num_output_rows"] for p in completed) == [1, 1, 2]


# --------------------------------------------------------------------------------------- dlt pipeline
DLT_PIPELINE = """
import dlt
from pyspark.sql import functions as F

dlt.create_sink("table_sink", "delta", {{"tableName": "{table}"}})

@dlt.table(private=True)
def raw():
    return spark.readStream.format("delta").load("{src}")

@dlt.table(temporary=True)
def older_temporary():
    return dlt.read("raw").groupBy().count()

@dlt.table(schema="id INT, amount DOUBLE, cents BIGINT GENERATED ALWAYS AS (CAST(amount * 100 AS BIGINT))")
def priced():
    return dlt.read_stream("raw")

@dlt.append_flow(target="table_sink")
def live_rows():
    return dlt.read_stream("raw")

@dlt.append_flow(target="table_sink", once=True)
def backfill():
    return spark.createDataFrame([(100, 0.5)], "id INT, amount DOUBLE")

dlt.create_streaming_table("cdc_target")

dlt.create_auto_cdc_flow(target="cdc_target", source="raw", keys=["id"], sequence_by="amount")
"""


@pytest.fixture(scope="module")
def dlt_run(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    run = PipelineRun(spark, tmp_path_factory.mktemp("dlt"))
    table = f"localdlt_test_sink_{uuid.uuid4().hex[:8]}"
    src = run.append_source("readings", [(1, 1.5), (2, 2.0)], SOURCE_SCHEMA)
    _write(run.root, "dlt_pipeline.py", DLT_PIPELINE.format(table=table, src=src))
    out: dict[str, Any] = {"run": run, "table": table}
    out["first"] = _run(run)
    out["first_sink"] = _rows(spark.table(table), "id", "amount")
    out["refresh"] = _run(run, full_refresh=True)
    yield out
    spark.sql(f"DROP TABLE IF EXISTS {table}")


def test_dlt_pipeline_with_a_table_name_sink(dlt_run):
    run, spark = dlt_run["run"], dlt_run["run"].spark
    assert dlt_run["first_sink"] == [(1, 1.5), (2, 2.0), (100, 0.5)]
    # a full refresh runs both flows again (the once flow too) and appends: nothing cleared
    assert _rows(spark.table(dlt_run["table"]), "id") == [(1,), (1,), (2,), (2,), (100,), (100,)]
    assert _rows(run.table("priced"), "id", "cents") == [(1, 150), (2, 200)]
    assert _rows(run.table("cdc_target"), "id", "amount") == [(1, 1.5), (2, 2.0)]
    for private in ("raw", "older_temporary"):
        assert (run.storage / "temporary" / private / "_delta_log").is_dir()
        assert not (run.storage / "tables" / private).exists()
    definitions = {d["_flow"]: d for d in _events(run, "flow_definition")}
    assert definitions["raw"]["private"] and definitions["older_temporary"]["private"]
    assert not definitions["priced"]["private"]
    assert dlt_run["refresh"].flows["backfill"].metrics.num_output_rows == 1


# ------------------------------------------------------------------------------------ mixed dlt + dp
def test_dlt_and_dp_mixed_in_one_pipeline_and_one_file(pipeline):
    before_module = sys.modules.get("pyspark.pipelines")
    pipeline.write(
        "mixed.py",
        """
        from pyspark import pipelines as dp

        @dlt.table
        def numbers():
            return spark.range(4)

        @dp.materialized_view
        def evens():
            return dlt.read("numbers").where("id % 2 = 0")
        """,
    )
    _write(
        pipeline.root,
        "only_dp.py",
        """
        import pyspark.pipelines as dp

        @dp.table
        def odds():
            return spark.read.table("numbers").where("id % 2 = 1")
        """,
    )
    result = pipeline.run()
    assert result.ok, result.error
    assert pipeline.rows("evens") == [(0,), (2,)]
    assert pipeline.rows("odds") == [(1,), (3,)]
    # pyspark's own module is back once the pipeline is loaded
    assert sys.modules.get("pyspark.pipelines") is before_module
    import pyspark.pipelines as real

    assert real.__name__ == "pyspark.pipelines" and hasattr(real, "api")


def test_pyspark_pipelines_is_restored_when_loading_fails(pipeline, spark):
    import pyspark

    before = (sys.modules.get("pyspark.pipelines"), pyspark.__dict__.get("pipelines"))
    _write(pipeline.root, "broken.py", "from pyspark import pipelines as dp\nraise RuntimeError('boom')\n")
    with pytest.raises(DefinitionError, match="broken.py:2 failed to import"):
        load([pipeline.root / "src"], spark)
    assert (sys.modules.get("pyspark.pipelines"), pyspark.__dict__.get("pipelines")) == before


# ------------------------------------------------------------------------------------ definition errors
SINK = 'dp.create_sink("out", "delta", {"path": "/tmp/localdlt-never-written"})\n'
STREAM = '\n@dp.table\ndef src():\n    return spark.readStream.format("rate").load()\n'


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            [
                SINK
                + STREAM
                + 'dp.create_auto_cdc_flow(target="out", source="src", keys=["id"], sequence_by="id")'
            ],
            "AUTO CDC flow 'out' writes to sink 'out'",
        ),
        (
            [
                SINK
                + STREAM
                + '@dp.append_flow(target="out")\n@dp.expect("positive", "value > 0")\n'
                + "def f():\n    return spark.readStream.table('src')\n"
            ],
            "writes to sink 'out': expectations are not allowed on sinks",
        ),
        ([SINK + STREAM, SINK], "Sink 'out' is defined twice"),
        (
            ['dp.create_sink("k", "kafka", {"topic": "t"})' + STREAM],
            "Sink 'k' has format 'kafka', which is not supported locally",
        ),
        (['dp.create_sink("p", "parquet", {"path": "/tmp/x"})' + STREAM], "supported formats are delta"),
        (['dp.create_sink("n", "delta", {})' + STREAM], "Delta sink 'n' needs exactly one of the options"),
        (
            ['@dp.table(schema="id INT GENERATED ALWAYS AS (id + ")\ndef t():\n    return spark.range(1)\n'],
            "schema of dataset 't' is not valid DDL",
        ),
    ],
)
def test_definition_errors_name_the_sink_or_dataset(spark, tmp_path, files, message):
    for i, code in enumerate(files):
        _write(tmp_path, f"f{i}.py", "from pyspark import pipelines as dp\n" + code)
    with pytest.raises(DefinitionError) as raised:
        graph = load([tmp_path / "src"], spark)
        Analyzer(spark, graph).run()
    text = str(raised.value)
    assert message in text and "\n" not in text, text


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            SINK + STREAM + "@dp.table\ndef reads_sink():\n    return spark.read.table('out')\n"
            "@dp.append_flow(target='out')\ndef w():\n    return spark.readStream.table('src')\n",
            "'reads_sink' reads 'out', which is a sink",
        ),
        (
            STREAM + "@dp.materialized_view\ndef mv():\n    return spark.readStream.table('src')\n",
            "Materialized view 'mv'",
        ),
    ],
)
def test_analysis_errors_fail_the_update(pipeline, code, message):
    _write(pipeline.root, "p.py", "from pyspark import pipelines as dp\n" + code)
    result = run_update(
        [str(pipeline.root / "src")],
        pipeline.storage,
        spark=pipeline.spark,
        progress=ConsoleProgress(quiet=True),
    )
    assert not result.ok
    assert isinstance(result.error, DefinitionError) and message in str(result.error), result.error
    assert "\n" not in str(result.error)
