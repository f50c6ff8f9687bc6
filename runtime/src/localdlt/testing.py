"""localdlt's pytest plugin (registered through the `pytest11` entry point): fixtures for pipeline authors.

    def test_orders(dlt_pipeline):
        result = dlt_pipeline.run(
            "pipelines/orders.py",
            inputs={"raw_orders": [(1, 9.5), (2, -1.0)]},
            schemas={"raw_orders": "id INT, amount DOUBLE"},
        )
        assert result.ok, result.error
        assert result.rows("orders") == [(1, 9.5)]
        assert result.expectations["orders"]["positive_amount"] == (1, 1)  # (passed, failed)

Fixtures:

- `localdlt_spark` (session): the Spark session (Delta Lake, local settings) every test shares; a project's
  own `spark` fixture can return it, so one process starts one JVM.
- `dlt_pipeline` (function): a `LocalPipeline` on a fresh storage folder under the test's `tmp_path`.

For runs shared by several tests, make a `LocalPipeline` in a fixture of a wider scope:
`LocalPipeline(localdlt_spark, tmp_path_factory.mktemp("orders"))`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from localdlt.errors import PipelineError
from localdlt.graph import PipelineGraph
from localdlt.progress import ConsoleProgress
from localdlt.runner import run_update
from localdlt.storage import Storage
from localdlt.subset import Subset
from localdlt.update_types import UpdateOptions, UpdateResult

__all__ = [
    "ExpectationCounts",
    "LocalPipeline",
    "PipelineResult",
    "dlt_pipeline",
    "localdlt_spark",
    "sorted_rows",
]

#: The rows of an input: a DataFrame, or a list of tuples, dicts or Rows (with a schema for tuples)
InputRows = DataFrame | Sequence[Any]
PathLike = str | os.PathLike[str]

SESSION_CONF = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}


class ExpectationCounts(NamedTuple):
    """Records one expectation judged in one update: it compares equal to a `(passed, failed)` tuple."""

    passed: int
    failed: int


@dataclass
class PipelineResult:
    """One update's outcome, and what it left in the pipeline's storage."""

    update: UpdateResult
    spark: SparkSession
    storage: Path
    graph: PipelineGraph | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """Whether the update COMPLETED."""
        return self.update.ok

    @property
    def error(self) -> BaseException | None:
        """Why the update FAILED (None when it completed)."""
        return self.update.error

    def table(self, name: str) -> DataFrame:
        """The rows a table, streaming table, private table, input or Delta sink holds now."""
        if self.graph is None:  # the pipeline did not load: look where a table would be
            found = [
                p for p in (self.storage / "tables" / name, self.storage / "temporary" / name) if p.is_dir()
            ]
            if not found:
                raise LookupError(f"No dataset '{name}' in {self.storage}: the pipeline did not load.")
            return self.spark.read.format("delta").load(str(found[0]))
        ds = self.graph.datasets.get(name)
        if ds is None:
            known = ", ".join(sorted(self.graph.datasets))
            raise LookupError(f"'{name}' is not a dataset of this run; its datasets are: {known}.")
        if ds.is_view:
            raise LookupError(f"'{name}' is a view: views are not stored; read a table that reads it.")
        if ds.is_sink:
            assert ds.sink is not None
            if ds.sink.format != "delta":
                raise LookupError(f"Sink '{name}' ({ds.sink.format}) keeps no rows that can be read back.")
            if "tableName" in ds.sink.options:
                return self.spark.read.table(ds.sink.options["tableName"])
            return self.spark.read.format("delta").load(ds.sink.options["path"])
        return self.spark.read.format("delta").load(Storage(self.storage).dataset_path(ds))

    def rows(self, name: str, *columns: str) -> list[tuple[Any, ...]]:
        """A dataset's rows as sorted tuples (of `columns` only, when given): equal for equal contents."""
        df = self.table(name)
        return sorted_rows(df.select(*columns) if columns else df)

    @property
    def event_log(self) -> DataFrame:
        """The pipeline's event log (every update on this storage), with Databricks' columns."""
        return self.spark.read.format("delta").load(str(self.storage / "system" / "events"))

    def events(self, event_type: str) -> list[dict[str, Any]]:
        """This update's events of one type, oldest first: each event's `details` for that type, plus
        `flow_name` and `dataset_name` from its origin and its `level`."""
        rows = (
            self.event_log.where(f"origin.update_id = '{self.update.update_id}'")
            .where(f"event_type = '{event_type}'")
            .orderBy("sequence.control_plane_seq_no")
            .collect()
        )
        return [
            {
                **json.loads(r.details)[event_type],
                "flow_name": r.origin.flow_name,
                "dataset_name": r.origin.dataset_name,
                "level": r.level,
            }
            for r in rows
        ]

    @cached_property
    def _progress(self) -> list[dict[str, Any]]:
        return self.events("flow_progress")

    @property
    def expectations(self) -> dict[str, dict[str, ExpectationCounts]]:
        """dataset -> expectation -> records passed and failed in this update, summed over the
        `data_quality` of its `flow_progress` events (a view's expectations are counted under the view)."""
        out: dict[str, dict[str, ExpectationCounts]] = {}
        for event in self._progress:
            for e in event.get("data_quality", {}).get("expectations", []):
                before = out.setdefault(e["dataset"], {}).get(e["name"], ExpectationCounts(0, 0))
                out[e["dataset"]][e["name"]] = ExpectationCounts(
                    before.passed + e["passed_records"], before.failed + e["failed_records"]
                )
        return out

    @property
    def dropped_records(self) -> dict[str, int]:
        """flow -> records its `expect_or_drop` expectations removed in this update."""
        out: dict[str, int] = {}
        for event in self._progress:
            if "data_quality" in event:
                flow = event["flow_name"]
                out[flow] = out.get(flow, 0) + event["data_quality"]["dropped_records"]
        return out


class LocalPipeline:
    """Runs pipeline files on a storage folder of its own, replacing datasets by rows a test gives.

    Each `run` is one update on the same storage: a later run continues from what the earlier ones left
    (streams read only rows given since), unless `full_refresh` says otherwise.
    """

    def __init__(self, spark: SparkSession, root: PathLike) -> None:
        self.spark = spark
        self.root = Path(root)
        self.storage = self.root / "storage"
        self._inputs: dict[str, str] = {}  # dataset -> Delta folder of the rows given for it

    def run(
        self,
        paths: PathLike | Sequence[PathLike],
        inputs: Mapping[str, InputRows] | None = None,
        *,
        schemas: Mapping[str, str | StructType] | None = None,
        datasets: Collection[str] | None = None,
        conf: Mapping[str, str] | None = None,
        full_refresh: bool | Collection[str] = False,
    ) -> PipelineResult:
        """One update of the pipeline made of `paths` (files or folders).

        - `inputs`: dataset name -> rows that replace that dataset (it becomes a streaming table of those
          rows, readable in batch or as a stream); in a later run, the rows given are added to it (the
          new input of that update). A dataset once given stays replaced in this object's later runs.
        - `schemas`: dataset name -> schema (DDL string or StructType) of rows given as tuples; by default
          the schema the input had before, else Spark infers it.
        - `datasets`: run only these datasets (and the inputs); reading any other fails the update.
        - `conf`: the pipeline's configuration (`spark.conf.get` in pipeline code).
        - `full_refresh`: True for all tables, or the names of the tables to refresh.
        """
        schemas = schemas or {}
        for name, given in (inputs or {}).items():
            self._inputs[name] = self._write_input(name, given, schemas.get(name))
        loaded: list[PipelineGraph] = []
        subset = Subset(inputs=dict(self._inputs), datasets=None if datasets is None else list(datasets))

        def edit(graph: PipelineGraph) -> PipelineGraph:
            loaded.append(graph)  # before the edit, so a failing edit still leaves the graph to read from
            return subset(graph)

        refresh_all = full_refresh is True
        tables = None if isinstance(full_refresh, bool) else list(full_refresh)
        update = run_update(
            [str(p) for p in ([paths] if isinstance(paths, str | os.PathLike) else paths)],
            self.storage,
            conf=conf,
            options=UpdateOptions(full_refresh=refresh_all, full_refresh_tables=tables),
            spark=self.spark,
            progress=ConsoleProgress(quiet=True),
            edit_graph=edit,
        )
        return PipelineResult(update, self.spark, self.storage, loaded[0] if loaded else None)

    def _write_input(self, name: str, given: InputRows, schema: str | StructType | None) -> str:
        folder = self.root / "inputs" / name
        if isinstance(given, DataFrame):
            if given.isStreaming:
                raise PipelineError(
                    f"Input '{name}' is a streaming DataFrame: give rows or a batch DataFrame."
                )
            df = given
        else:
            if isinstance(given, str | bytes) or not isinstance(given, Sequence):
                raise PipelineError(
                    f"Input '{name}' must be a DataFrame or a list of rows, got {type(given).__name__}."
                )
            if schema is None and (folder / "_delta_log").is_dir():
                schema = self.spark.read.format("delta").load(str(folder)).schema
            if schema is None and not given:
                raise PipelineError(
                    f"Input '{name}' has no rows and no schema: pass schemas={{'{name}': ...}}."
                )
            df = self.spark.createDataFrame(list(given), schema)
        df.write.format("delta").mode("append").option("mergeSchema", "true").save(str(folder))
        return str(folder)


def sorted_rows(df: DataFrame) -> list[tuple[Any, ...]]:
    """A DataFrame's rows as tuples in a stable order (NULLs first in each column)."""
    rows = [tuple(r) for r in df.collect()]
    try:
        return sorted(rows, key=lambda row: tuple((v is not None, v) for v in row))
    except TypeError:  # values that do not order (maps): their text orders
        return sorted(rows, key=repr)


@pytest.fixture(scope="session")
def localdlt_spark() -> Iterator[SparkSession]:
    """The Spark session every test of the run shares (starting one takes seconds)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from localdlt.session import get_spark

    yield get_spark("localdlt-tests", SESSION_CONF)


@pytest.fixture
def dlt_pipeline(localdlt_spark: SparkSession, tmp_path: Path) -> LocalPipeline:
    """A `LocalPipeline` on a storage folder of this test's own (under `tmp_path`)."""
    return LocalPipeline(localdlt_spark, tmp_path / "localdlt")
