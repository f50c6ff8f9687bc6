"""The `localdlt` command: `run` (files, or a bundle's pipeline), `validate` (every error of a broken
pipeline), `--help`, and one-line errors. Each pipeline runs once in a subprocess (module-scoped
fixtures); the checks read what it wrote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from localdlt.cli import main
from pipeline_run import PipelineRun
from test_current_api import DLT_PIPELINE, DP_PIPELINE, SOURCE_SCHEMA

SCRIPT = str(Path(sys.executable).parent / "localdlt")


def _localdlt(*args: str, module: bool = False, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """`localdlt ARGS` (the console script), or `python -m localdlt ARGS` with `module=True`."""
    command = [sys.executable, "-m", "localdlt"] if module else [SCRIPT]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout, env=env)


def _rows(df: Any, *cols: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in df.select(*cols).collect())


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


# ------------------------------------------------------------------------------- run: the two APIs


@pytest.fixture(scope="module")
def dp_cli(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """DP_PIPELINE (only `dp` names) run by the console script `localdlt run`."""
    run = PipelineRun(spark, tmp_path_factory.mktemp("cli_dp"))
    src = run.append_source("readings", [(1, 1.0), (2, 2.5)], SOURCE_SCHEMA)
    sink, calls = run.root / "sink", run.root / "calls.jsonl"
    source = _write(run.root / "src" / "dp_pipeline.py", DP_PIPELINE.format(sink=sink, src=src, calls=calls))
    done = _localdlt("run", str(source), "--storage", str(run.storage), "--name", "dp-by-cli")
    return {"run": run, "done": done, "sink": str(sink), "calls": calls}


@pytest.fixture(scope="module")
def dlt_cli(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """DLT_PIPELINE (only `dlt` names) run by `python -m localdlt run`."""
    run = PipelineRun(spark, tmp_path_factory.mktemp("cli_dlt"))
    table = f"localdlt_cli_sink_{uuid.uuid4().hex[:8]}"
    src = run.append_source("readings", [(1, 1.5), (2, 2.0)], SOURCE_SCHEMA)
    source = _write(run.root / "src" / "dlt_pipeline.py", DLT_PIPELINE.format(table=table, src=src))
    done = _localdlt("run", str(source.parent), "--storage", str(run.storage), "--quiet", module=True)
    # the sink's table is a managed table of the subprocess's session, in the warehouse folder
    warehouse = Path(os.environ.get("TMPDIR", "/tmp")) / "localdlt-warehouse" / table
    yield {"run": run, "done": done, "warehouse": warehouse}
    shutil.rmtree(warehouse, ignore_errors=True)


def test_console_script_runs_the_dp_pipeline(dp_cli):
    done, run = dp_cli["done"], dp_cli["run"]
    assert done.returncode == 0, done.stderr
    assert "pipeline 'dp-by-cli'" in done.stdout and "COMPLETED" in done.stdout
    assert _rows(run.table("totals"), "id", "amount", "doubled") == [(1, 1.0, 2.0), (2, 2.5, 5.0)]
    assert _rows(run.table("events"), "id", "size") == [(1, "small"), (2, "big")]
    private = run.spark.read.format("delta").load(str(run.storage / "temporary" / "raw"))
    assert _rows(private, "id") == [(1,), (2,)] and not (run.storage / "tables" / "raw").exists()
    assert _rows(run.spark.read.format("delta").load(dp_cli["sink"]), "id", "tag") == [(2, "dp")]
    calls = [json.loads(line) for line in dp_cli["calls"].read_text().splitlines()]
    assert calls == [[0, [1, 2]]]  # the foreach_batch sink's one micro-batch


def test_python_dash_m_runs_the_dlt_pipeline(dlt_cli):
    done, run = dlt_cli["done"], dlt_cli["run"]
    assert done.returncode == 0, done.stderr
    assert "COMPLETED" in done.stdout
    assert _rows(run.table("priced"), "id", "cents") == [(1, 150), (2, 200)]  # a generated column
    assert _rows(run.table("cdc_target"), "id", "amount") == [(1, 1.5), (2, 2.0)]
    assert not (run.storage / "tables" / "raw").exists()  # private
    sink = run.spark.read.format("delta").load(str(dlt_cli["warehouse"]))
    assert _rows(sink, "id", "amount") == [(1, 1.5), (2, 2.0), (100, 0.5)]


# ------------------------------------------------------------------------------------- run --bundle

BUNDLE_ROOT = """
bundle:
  name: demo
include:
  - resources/*.yml
variables:
  greeting:
    description: what the table says
    default: hello
  source_path:
    description: the rows' Delta folder
targets:
  dev:
    default: true
    variables:
      source_path: /nowhere
  test:
    variables:
      source_path: {src}
    resources:
      pipelines:
        demo_pipeline:
          configuration:
            demo.note: "target ${{bundle.target}}"
"""

BUNDLE_PIPELINE = """
resources:
  pipelines:
    demo_pipeline:
      name: demo-${bundle.target}
      libraries:
        - glob:
            include: ../pipelines/**
      configuration:
        demo.greeting: ${var.greeting}
        demo.source: ${var.source_path}
        demo.note: "top level"
        demo.root: ${workspace.file_path}
      environment:
        dependencies:
          - --editable ${workspace.file_path}/helper_lib
"""

BUNDLE_CODE = """
import dlt
from pyspark.sql import functions as F

from demo_helpers import shout  # the environment dependency: a local project

@dlt.table
def greetings():
    loud = F.udf(shout, "string")  # runs in Spark's Python workers: they import demo_helpers too
    rows = spark.read.format("delta").load(spark.conf.get("demo.source"))
    return rows.select(
        "id",
        loud(F.lit(spark.conf.get("demo.greeting"))).alias("text"),
        F.lit(spark.conf.get("demo.note")).alias("note"),
        F.lit(spark.conf.get("demo.root")).alias("root"),
    )
"""


def write_bundle(root: Path, src: str) -> Path:
    _write(root / "databricks.yml", BUNDLE_ROOT.format(src=src))
    _write(root / "resources" / "demo.pipeline.yml", BUNDLE_PIPELINE)
    _write(root / "pipelines" / "greetings.py", BUNDLE_CODE)
    _write(root / "helper_lib" / "pyproject.toml", "[project]\nname = 'demo-helpers'\n")
    _write(
        root / "helper_lib" / "src" / "demo_helpers" / "__init__.py", "def shout(s):\n    return s.upper()\n"
    )
    return root


@pytest.fixture(scope="module")
def bundle_cli(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    run = PipelineRun(spark, tmp_path_factory.mktemp("cli_bundle"))
    src = run.append_source("rows", [(1, 1.0), (2, 2.0)], SOURCE_SCHEMA)
    root = write_bundle(run.root / "bundle", src)
    args = ("--bundle", str(root), "--pipeline", "demo_pipeline", "--target", "test", "--var", "greeting=hi")
    done = _localdlt("run", *args, "--storage", str(run.storage))
    return {"run": run, "done": done, "root": root}


def test_run_bundle_takes_libraries_configuration_name_and_environment(bundle_cli):
    done, run = bundle_cli["done"], bundle_cli["run"]
    assert done.returncode == 0, done.stderr
    assert "pipeline 'demo-test'" in done.stdout  # the resource's name, ${bundle.target} resolved
    root = str(bundle_cli["root"].resolve())
    # --var over the default; the target's configuration over the top level; ${workspace.file_path}
    assert _rows(run.table("greetings"), "id", "text", "note", "root") == [
        (1, "HI", "target test", root),
        (2, "HI", "target test", root),
    ]


# ----------------------------------------------------------------------------------------- validate

BROKEN = {
    "a_fails.py": """
        import dlt

        @dlt.table
        def fine_a():
            return spark.range(2)

        raise RuntimeError("boom while importing")
        """,
    "b_wrong.py": """
        import dlt

        @dlt.table
        def twice():
            return spark.range(1)

        @dlt.table
        def reads_missing():
            return dlt.read("nowhere")

        @dlt.table
        def downstream_of_missing():  # reads a failed dataset: no error of its own
            return dlt.read("reads_missing")

        @dlt.table(schema="id INT,, broken")
        def bad_schema():
            return spark.range(1).selectExpr("CAST(id AS INT) id")

        @dlt.table
        def unknown_column():
            return spark.range(3).select("no_such_column")

        @dlt.table
        def cycle_a():
            return dlt.read("cycle_b")

        @dlt.table
        def cycle_b():
            return dlt.read("cycle_a")
        """,
    "c_more.py": """
        import dlt

        @dlt.table
        def twice():
            return spark.range(2)

        dlt.create_sink("out", "delta", {"path": "/tmp/localdlt-never-written"})

        @dlt.append_flow(target="out")
        @dlt.expect("positive", "id > 0")
        def to_out():
            return spark.readStream.format("rate").load()
        """,
}


@pytest.fixture(scope="module")
def validated(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`localdlt validate` on a broken pipeline of three files; `python -m localdlt validate` on the
    bundle's pipeline (its source given with --conf)."""
    tmp = tmp_path_factory.mktemp("cli_validate")
    rows = str(tmp / "rows")
    spark.createDataFrame([(1, 1.0)], SOURCE_SCHEMA).write.format("delta").save(rows)
    for name, code in BROKEN.items():
        _write(tmp / "broken" / name, code)
    storage = tmp / "storage"
    broken = _localdlt("validate", str(tmp / "broken"), "--storage", str(storage))
    root = write_bundle(tmp / "bundle", str(tmp / "no_rows_needed"))
    bundle = ("--bundle", str(root), "--pipeline", "demo_pipeline", "--target", "test")
    valid = _localdlt("validate", *bundle, "--conf", f"demo.source={rows}", module=True)
    return {"broken": broken, "valid": valid, "storage": storage, "dir": tmp / "broken"}


def test_validate_lists_every_error_naming_file_and_dataset(validated):
    done = validated["broken"]
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "QueryContextLogger" not in done.stderr and "\tat org.apache" not in done.stderr  # no Java stack
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    folder = str(validated["dir"].resolve())

    def line_with(*words: str) -> str:
        found = [line for line in lines if all(w in line for w in words)]
        assert len(found) == 1, (words, lines)
        return found[0]

    assert f"{folder}/a_fails.py:8" in line_with("a_fails.py", "boom while importing")
    line_with("twice", "defined twice", "b_wrong.py", "c_more.py")
    line_with("b_wrong.py", "reads_missing", "nowhere")
    line_with("bad_schema", "not valid DDL")
    line_with("b_wrong.py", "unknown_column", "no_such_column")
    line_with("b_wrong.py", "Dependency cycle", "cycle_a -> cycle_b")
    line_with("c_more.py", "to_out", "sink 'out'", "expectations are not allowed")
    assert len(lines) == 7, lines  # nothing about downstream_of_missing nor cycle_b's own read
    assert "7 error(s)" in done.stderr
    assert not validated["storage"].exists()  # nothing written


def test_validate_a_valid_bundle_pipeline_prints_a_summary(validated):
    done = validated["valid"]
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "valid: 1 datasets, 1 flows"


# ---------------------------------------------------------------------------- help and usage errors


@pytest.mark.parametrize("command", ["run", "validate", "setup"])
def test_every_sub_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: localdlt {command}")
    options = {"run": ["--storage", "--conf", "--bundle", "--pipeline", "--var", "--full-refresh-tables",
                       "--continuous", "--max-seconds", "--workers", "--jit", "--quiet", "--name"],
               "validate": ["--bundle", "--conf", "--storage"],
               "setup": ["--jars"]}[command]  # fmt: skip
    assert all(option in out for option in options), out


def test_errors_are_one_line_naming_what_is_at_fault(tmp_path, capsys):
    root = write_bundle(tmp_path / "bundle", str(tmp_path / "rows"))
    storage = str(tmp_path / "storage")
    for argv, status, words in (
        (["run", "--bundle", str(root), "--pipeline", "nope", "--storage", storage], 1,
         ["no pipeline 'nope'", "demo_pipeline"]),
        (["run", str(tmp_path / "missing.py"), "--storage", storage], 1, ["missing.py", "does not exist"]),
        (["validate", str(tmp_path / "missing")], 1, ["missing", "does not exist"]),
        (["run", "--bundle", str(root), "--storage", storage], 2, ["--pipeline"]),
        (["run", "--bundle", str(root), "--pipeline", "demo_pipeline", "--target", "prod", "--storage",
          storage], 1, ["no target 'prod'", "dev, test"]),
        (["run", str(root), "--pipeline", "demo_pipeline", "--storage", storage], 2, ["--pipeline", "--bundle"]),
        (["run", str(root), "--storage", storage, "--max-seconds", "5"], 2, ["--max-seconds", "--continuous"]),
    ):  # fmt: skip
        assert main(argv) == status, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, (argv, err)
        assert all(w in err for w in words), (argv, err)
    for argv, words in (
        (["run", str(root), "--storage", storage, "--conf", "KEY"], ["--conf", "KEY=VALUE"]),
        (["run", str(root), "--storage", storage, "--workers", "0"], ["--workers", ">= 1"]),
        (["run", str(root), "--storage", str(root / "databricks.yml")], ["--storage", "is a file"]),
    ):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 2, argv
        err = capsys.readouterr().err
        assert all(w in err for w in words) and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "storage").exists()  # nothing written by a refused command
