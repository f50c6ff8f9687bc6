"""Auto Loader's schema evolution modes, each meeting a file that adds a column between two updates, and
its errors (failOnNewColumns, an unknown cloudFiles.format, a missing input path)."""

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
def cloud(folder, fmt="csv", **options):
    return (spark.readStream.format("cloudFiles")
            .option("cloudFiles.format", fmt)
            .option("cloudFiles.schemaLocation", f"{SCHEMAS}/{folder}")
            .options(**options)
            .load(f"{LANDING}/{folder}"))

@dlt.table
def added():
    return cloud("added", header="true")  # addNewColumns, the default

@dlt.table
def rescued():
    return cloud("rescued", header="true", **{"cloudFiles.schemaEvolutionMode": "rescue"})

@dlt.table
def ignored():
    return cloud("ignored", header="true", **{"cloudFiles.schemaEvolutionMode": "none"})

@dlt.table
def hinted_added():  # a hinted column the files lack, then a new column in the files
    return cloud("hinted_added", header="true", **{"cloudFiles.schemaHints": "flag BOOLEAN, id INT"})

@dlt.table
def json_rescued():
    return cloud("json_rescued", "json", **{"cloudFiles.schemaEvolutionMode": "rescue",
                                            "cloudFiles.inferColumnTypes": "true"})

@dlt.table
def json_added():
    return cloud("json_added", "json").select("*", F.col("_metadata.file_name").alias("source_file"))
"""


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("autoloader_evolution")
    pipeline = PipelineRun(spark, root)
    landing, schemas = root / "landing", root / "schemas"
    for folder in ("added", "rescued", "ignored"):
        _write(landing / folder / "a.csv", "id,name\n1,a\n")
    _write(landing / "json_added" / "a.json", '{"id": 1}\n')
    _write(landing / "hinted_added" / "a.csv", "id,name\n1,a\n")
    _write(landing / "json_rescued" / "a.json", '{"id": 1, "n": 2}\n')
    pipeline.write("ingest.py", f'LANDING = "{landing}"\nSCHEMAS = "{schemas}"\n' + PIPELINE)
    first = pipeline.run()
    assert first.ok, first.error
    for folder in ("added", "rescued", "ignored"):
        _write(landing / folder / "b.csv", "id,name,extra\n2,b,x\n")
    _write(landing / "json_added" / "b.json", '{"id": 2, "color": "red"}\n')
    _write(landing / "hinted_added" / "b.csv", "id,name,extra\n2,b,x\n")
    _write(landing / "json_rescued" / "b.json", '{"id": 2, "n": "abc", "new": {"x": 1}}\n')
    second = pipeline.run()
    return SimpleNamespace(pipeline=pipeline, first=first, second=second, schemas=schemas)


def _columns(pipeline: PipelineRun, table: str) -> list[str]:
    return pipeline.table(table).columns


def test_add_new_columns_evolves_the_schema_and_the_table(runs):
    assert runs.second.ok, runs.second.error
    assert _columns(runs.pipeline, "added") == ["id", "name", "_rescued_data", "extra"]
    assert runs.pipeline.rows("added", "id", "name", "extra", "_rescued_data") == [
        ("1", "a", None, None),
        ("2", "b", "x", None),
    ]
    versions = sorted(p.name for p in (runs.schemas / "added" / "_schemas").iterdir())
    assert versions == ["0", "1"]  # the evolved schema is recorded in the schema location
    latest = json.loads((runs.schemas / "added" / "_schemas" / "1").read_text())
    assert [f["name"] for f in latest["schema"]["fields"]] == ["id", "name", "extra"]


def test_add_new_columns_with_json(runs):
    rows = runs.pipeline.rows("json_added", "id", "color", "source_file")
    assert rows == [("1", None, "a.json"), ("2", "red", "b.json")]


def test_rescue_keeps_the_schema_and_rescues_new_columns(runs):
    assert _columns(runs.pipeline, "rescued") == ["id", "name", "_rescued_data"]
    rows = runs.pipeline.rows("rescued")
    assert rows[0] == ("1", "a", None)
    assert rows[1][:2] == ("2", "b")
    rescued = json.loads(rows[1][2])
    assert rescued["extra"] == "x" and rescued["_file_path"].endswith("rescued/b.csv")
    assert set(rescued) == {"extra", "_file_path"}


def test_none_ignores_new_columns_without_a_rescued_column(runs):
    assert _columns(runs.pipeline, "ignored") == ["id", "name"]
    assert runs.pipeline.rows("ignored") == [("1", "a"), ("2", "b")]


def test_fail_on_new_columns_fails_until_the_schema_changes(pipeline):
    landing = pipeline.root / "landing"
    _write(landing / "strict" / "a.csv", "id,name\n1,a\n")
    code = f"""
        @dlt.table
        def strict():
            return (spark.readStream.format("cloudFiles")
                    .option("cloudFiles.format", "csv").option("header", "true")
                    .option("cloudFiles.schemaEvolutionMode", "failOnNewColumns")
                    .option("cloudFiles.schemaLocation", "{pipeline.root}/schemas/strict")
                    .load("{landing}/strict"))
        """
    pipeline.write("strict.py", code)
    assert pipeline.run().ok
    _write(landing / "strict" / "b.csv", "id,name,extra\n2,b,x\n")
    for _ in range(2):  # the schema does not evolve: it fails again
        result = pipeline.run()
        assert not result.ok
        assert "new columns [extra]" in str(result.error) and "failOnNewColumns" in str(result.error)
    assert pipeline.rows("strict") == [("1", "a", None)]


@pytest.mark.parametrize(
    "reader, expected",
    [
        ('option("cloudFiles.format", "xml").load("{landing}")', "cloudFiles.format 'xml' is not supported"),
        ('option("cloudFiles.format", "csv").load("{landing}/missing")', "/missing' does not exist"),
        ('option("cloudFiles.format", "csv").load("{landing}/empty")', "it holds no files yet"),
    ],
)
def test_errors_are_one_clear_line(pipeline, reader, expected):
    landing = pipeline.root / "landing"
    (landing / "empty").mkdir(parents=True)
    pipeline.write(
        "bad.py",
        f"""
        @dlt.table
        def bad():
            return spark.readStream.format("cloudFiles").{reader.format(landing=landing)}
        """,
    )
    result = pipeline.run()
    assert not result.ok
    message = str(result.error)
    assert expected in message and "Auto Loader" in message
    assert "Traceback" not in message and "Py4J" not in message


def test_new_columns_line_up_after_hinted_columns_the_files_lack(runs):
    assert runs.pipeline.rows("hinted_added", "id", "name", "flag", "extra") == [
        (1, "a", None, None),
        (2, "b", None, "x"),
    ]


def test_rescue_of_json_type_mismatches_and_new_fields(runs):
    rows = runs.pipeline.rows("json_rescued")
    assert runs.pipeline.table("json_rescued").columns == ["id", "n", "_rescued_data"]
    assert rows[0] == (1, 2, None)
    assert rows[1][:2] == (2, None)
    rescued = json.loads(rows[1][2])
    assert rescued["n"] == "abc" and json.loads(rescued["new"]) == {"x": 1}
    assert rescued["_file_path"].endswith("json_rescued/b.json")
