"""Auto Loader (`spark.readStream.format("cloudFiles")`) over local folders: formats, schema inference, hints,
the schema location, the rescued data column, and each file read once across updates. One pipeline of
several streaming tables, run twice (a file added to some inputs in between), shared by the module."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline_run import PipelineRun


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


PIPELINE = """
def cloud(fmt, folder, **options):
    reader = spark.readStream.format("cloudFiles").option("cloudFiles.format", fmt)
    for key, value in options.items():
        reader = reader.option(key, value)
    return reader.load(f"{LANDING}/{folder}")

@dlt.table
def csv_strings():
    return cloud("csv", "plain", header=True, **{"cloudFiles.schemaLocation": f"{SCHEMAS}/plain"})

@dlt.table
def csv_typed():
    return cloud("csv", "typed", header="true", **{"cloudFiles.inferColumnTypes": "true",
                                                   "cloudFiles.schemaLocation": f"{SCHEMAS}/typed"})

@dlt.table
def csv_hinted():
    return cloud("csv", "plain", header=True, delimiter=",",
                 **{"cloudFiles.schemaHints": "id BIGINT, amount DOUBLE, extra_hint DATE",
                    "cloudFiles.schemaLocation": f"{SCHEMAS}/hinted"})

@dlt.table
def json_rows():
    return cloud("json", "json", **{"cloudFiles.schemaLocation": f"{SCHEMAS}/json"})

@dlt.table
def json_typed():
    return cloud("json", "json", **{"cloudFiles.inferColumnTypes": True})  # default schema location

@dlt.table
def parquet_rows():
    return cloud("parquet", "parquet", **{"cloudFiles.schemaLocation": f"{SCHEMAS}/parquet"})

@dlt.table
def csv_glob():
    return cloud("csv", "typed/*.csv", header=True, **{"cloudFiles.maxFilesPerTrigger": 1})

@dlt.table
def text_lines():
    return cloud("text", "text")

@dlt.table
def given_schema():
    return (spark.readStream.format("cloudFiles").schema("id INT, name STRING")
            .options(**{"cloudFiles.format": "csv", "header": "true"}).load(f"{LANDING}/typed"))

@dlt.table
def given_rescued():
    return (spark.readStream.format("cloudFiles").schema("id INT, name STRING")
            .option("cloudFiles.format", "csv").option("header", "true")
            .option("rescuedDataColumn", "_rescue").load(f"{LANDING}/typed"))
"""


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("autoloader")
    pipeline = PipelineRun(spark, root)
    landing, schemas = root / "landing", root / "schemas"
    _write(landing / "plain" / "a.csv", "id,name,amount\n1,ann,2.5\n2,bob,x\n")
    _write(landing / "typed" / "a.csv", "id,name,amount\n1,ann,2.5\n2,bob,3.0\n")
    _write(landing / "json" / "a.json", '{"id": 1, "tags": {"k": "v"}}\n{"id": 2, "tags": {"k": "w"}}\n')
    _write(landing / "text" / "a.txt", "first line\nsecond line\n")
    spark.createDataFrame([(1, 1.5)], "id BIGINT, price DOUBLE").write.parquet(
        str(landing / "parquet" / "p1")
    )
    pipeline.write("ingest.py", f'LANDING = "{landing}"\nSCHEMAS = "{schemas}"\n' + PIPELINE)
    first = pipeline.run()
    assert first.ok, first.error
    snapshot = {t: pipeline.rows(t) for t in ("csv_strings", "csv_typed", "text_lines", "given_schema")}
    _write(landing / "typed" / "b.csv", "id,name,amount\n3,cy,oops\n")
    _write(landing / "text" / "b.txt", "third line\n")
    second = pipeline.run()
    third = pipeline.run()
    return SimpleNamespace(
        pipeline=pipeline, first=first, second=second, third=third, snapshot=snapshot, schemas=schemas
    )


def _types(pipeline: PipelineRun, table: str) -> dict[str, str]:
    return {f.name: f.dataType.simpleString() for f in pipeline.table(table).schema.fields}


def test_updates_succeed(runs):
    for result in (runs.first, runs.second, runs.third):
        assert result.ok, result.error


def test_csv_columns_are_strings_by_default_with_a_rescued_data_column(runs):
    types = _types(runs.pipeline, "csv_strings")
    assert types == {"id": "string", "name": "string", "amount": "string", "_rescued_data": "string"}
    assert runs.pipeline.rows("csv_strings") == [("1", "ann", "2.5", None), ("2", "bob", "x", None)]


def test_infer_column_types_types_csv_and_rescues_values_that_do_not_fit(runs):
    types = _types(runs.pipeline, "csv_typed")
    assert types == {"id": "int", "name": "string", "amount": "double", "_rescued_data": "string"}
    rows = runs.pipeline.rows("csv_typed")
    assert [r[:3] for r in rows] == [(1, "ann", 2.5), (2, "bob", 3.0), (3, "cy", None)]
    rescued = json.loads(rows[2][3])
    assert rescued["amount"] == "oops" and rescued["_file_path"].endswith("typed/b.csv")
    assert rows[0][3] is None and rows[1][3] is None


def test_schema_hints_override_inferred_types_and_add_columns(runs):
    types = _types(runs.pipeline, "csv_hinted")
    assert types == {
        "id": "bigint",
        "name": "string",
        "amount": "double",
        "extra_hint": "date",
        "_rescued_data": "string",
    }
    rows = runs.pipeline.rows("csv_hinted", "id", "amount", "_rescued_data")
    assert rows[0] == (1, 2.5, None)
    assert rows[1][:2] == (2, None) and json.loads(rows[1][2])["amount"] == "x"


def test_json_nested_fields_are_strings_unless_types_are_inferred(runs):
    assert _types(runs.pipeline, "json_rows") == {
        "id": "string",
        "tags": "struct<k:string>",
        "_rescued_data": "string",
    }
    assert runs.pipeline.rows("json_rows", "id", "tags.k") == [("1", "v"), ("2", "w")]
    assert _types(runs.pipeline, "json_typed")["id"] == "bigint"


def test_parquet_keeps_its_types(runs):
    assert _types(runs.pipeline, "parquet_rows") == {
        "id": "bigint",
        "price": "double",
        "_rescued_data": "string",
    }
    assert runs.pipeline.rows("parquet_rows") == [(1, 1.5, None)]


def test_text_has_the_fixed_value_column(runs):
    assert _types(runs.pipeline, "text_lines") == {"value": "string"}
    assert runs.pipeline.rows("text_lines") == [("first line",), ("second line",), ("third line",)]


def test_a_given_schema_disables_inference_and_the_rescued_column(runs):
    assert _types(runs.pipeline, "given_schema") == {"id": "int", "name": "string"}
    assert runs.pipeline.rows("given_schema") == [(1, "ann"), (2, "bob"), (3, "cy")]


def test_each_file_is_read_once_across_updates(runs):
    assert runs.snapshot["csv_typed"] == [(1, "ann", 2.5, None), (2, "bob", 3.0, None)]
    assert runs.first.flows["csv_typed"].metrics.num_output_rows == 2
    assert runs.second.flows["csv_typed"].metrics.num_output_rows == 1  # only the new file
    assert runs.second.flows["csv_strings"].metrics.num_output_rows == 0  # no new file: nothing reread
    assert runs.third.flows["csv_typed"].metrics.num_output_rows == 0
    assert runs.third.flows["text_lines"].metrics.num_output_rows == 0
    assert len(runs.pipeline.rows("text_lines")) == 3


def test_the_schema_location_keeps_the_inferred_schema(runs):
    versions = sorted(p.name for p in (runs.schemas / "typed" / "_schemas").iterdir())
    assert versions == ["0"]  # b.csv brought no new column: no new version
    stored = json.loads((runs.schemas / "typed" / "_schemas" / "0").read_text())
    assert [f["name"] for f in stored["schema"]["fields"]] == ["id", "name", "amount"]
    inspected = json.loads((runs.schemas / "typed" / "_localdlt_inspected.json").read_text())["files"]
    assert [Path(f).name for f in inspected] == ["a.csv", "b.csv"]


def test_a_given_schema_with_rescued_data_column_rescues_the_columns_it_lacks(runs):
    assert _types(runs.pipeline, "given_rescued") == {"id": "int", "name": "string", "_rescue": "string"}
    rows = runs.pipeline.rows("given_rescued")
    assert [r[:2] for r in rows] == [(1, "ann"), (2, "bob"), (3, "cy")]
    assert [json.loads(r[2])["amount"] for r in rows] == ["2.5", "3.0", "oops"]


def test_a_glob_path_and_max_files_per_trigger(runs):
    assert runs.pipeline.rows("csv_glob", "id") == [("1",), ("2",), ("3",)]
    assert runs.second.flows["csv_glob"].metrics.num_output_rows == 1
