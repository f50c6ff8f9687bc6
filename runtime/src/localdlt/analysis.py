"""Resolve the graph before anything is written: which datasets each flow reads, whether it is a stream,
the schema of every table, and the order to run flows in. Reads return empty DataFrames with the read
dataset's schema, so query functions are only planned, never executed.

Errors found here (unknown dataset, cycle, a function that returns no DataFrame, a constraint that does
not compile) are `DefinitionError`s naming the dataset, flow and file. When the graph collects its errors
(`PipelineGraph.errors`, validation), each dataset's first error is recorded and the analysis goes on; a
dataset that reads a failed one is left out without an error of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

import localdlt.context as context
import localdlt.ddl as ddl
import localdlt.expectations as exp
from localdlt.errors import DefinitionError, error_summary
from localdlt.frames import empty_frame
from localdlt.graph import Dataset, Flow, PipelineGraph
from localdlt.sessionproxy import SessionProxy, session_with_conf


class _UpstreamFailed(DefinitionError):
    """Collecting mode: a dataset read one whose error is recorded already."""


@dataclass
class Analysis:
    schemas: dict[str, StructType] = field(default_factory=dict)
    streaming: dict[str, bool] = field(default_factory=dict)
    view_inputs: dict[str, list[str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # tables, upstream first
    table_deps: dict[str, set[str]] = field(default_factory=dict)
    flow_inputs: dict[str, list[str]] = field(default_factory=dict)

    def shared_views(self) -> set[str]:
        """Views that more than one flow reads, directly or through other views."""
        readers: dict[str, set[str]] = {}
        for flow, inputs in self.flow_inputs.items():
            seen: set[str] = set()
            todo = list(inputs)
            while todo:
                name = todo.pop()
                if name in seen or name not in self.view_inputs:
                    continue
                seen.add(name)
                readers.setdefault(name, set()).add(flow)
                todo.extend(self.view_inputs[name])
        return {view for view, flows in readers.items() if len(flows) > 1}


class _Recorder:
    """The `dlt` reader during analysis: records inputs and hands out placeholders."""

    def __init__(self, analyzer: Analyzer, reader_of: str) -> None:
        self.analyzer = analyzer
        self.reader_of = reader_of
        self.inputs: list[str] = []
        self.streaming = False

    def read(self, name: str) -> DataFrame:
        return self._placeholder(name, stream=False)

    def read_stream(self, name: str) -> DataFrame:
        return self._placeholder(name, stream=True)

    def _placeholder(self, name: str, stream: bool) -> DataFrame:
        df = self.analyzer.placeholder(name, self.reader_of)
        if name not in self.inputs:
            self.inputs.append(name)
        ds = self.analyzer.graph.datasets[name]
        # a batch read of a streaming table is a batch query; a streaming view keeps its reader streaming
        if stream or (ds.is_view and self.analyzer.result.streaming.get(name, False)):
            self.streaming = True
        return df


class Analyzer:
    def __init__(
        self,
        spark: SparkSession,
        graph: PipelineGraph,
        existing_schema: Callable[[str], StructType | None] = lambda name: None,
        proxy: SessionProxy | None = None,
    ) -> None:
        self.spark = spark
        self.proxy = proxy  # the `spark` of pipeline files: flows with spark_conf get a session of their own
        self.graph = graph
        self.existing_schema = existing_schema  # schema of a table already in storage, if any
        self.result = Analysis()
        self._view_frames: dict[str, DataFrame] = {}
        self._done: set[str] = set()
        self._stack: list[str] = []

    # ------------------------------------------------------------------------------------------ public
    def run(self) -> Analysis:
        for name in self.graph.datasets:
            self.ensure(name)
        if self.graph.errors is None:
            self._order_tables()
        return self.result

    def placeholder(self, name: str, reader_of: str) -> DataFrame:
        ds = self.graph.datasets.get(name)
        if ds is None:
            known = ", ".join(sorted(self.graph.datasets)) or "none"
            raise DefinitionError(
                f"'{reader_of}' reads dataset '{name}', which is not defined in this pipeline "
                f"(defined: {known})."
            )
        if ds.is_sink:
            raise DefinitionError(
                f"'{reader_of}' reads '{name}', which is a sink: sinks are written by append flows and "
                f"cannot be read in the pipeline."
            )
        self.ensure(name)
        if name in self.graph.failed:
            raise _UpstreamFailed(name)
        if ds.is_view:
            return self._view_frames[name]
        schema = self.result.schemas.get(name)
        if schema is None:
            raise DefinitionError(
                f"'{reader_of}' reads '{name}', whose schema is not known until its snapshot function "
                f"first returns data: run the pipeline once without the reader, or declare schema=... ."
            )
        return empty_frame(self.spark, schema)

    def ensure(self, name: str) -> None:
        if name in self._done:
            return
        if name in self._stack:
            cycle = " -> ".join([*self._stack[self._stack.index(name) :], name])
            raise DefinitionError(f"Dependency cycle between datasets: {cycle}.")
        if name in self.graph.failed:  # collecting: its error is recorded
            self._done.add(name)
            return
        self._stack.append(name)
        try:
            ds = self.graph.datasets[name]
            if ds.is_view:
                self._analyze_view(ds)
            else:
                self._analyze_table(ds)
        except DefinitionError as err:
            if self.graph.errors is None:
                raise
            if not isinstance(err, _UpstreamFailed):
                where = ds.source_file or "<unknown file>"
                located = err if where in str(err) else DefinitionError(f"{where}: {err}")
                self.graph.fail(located, name)
            self.graph.failed.add(name)
        finally:
            self._stack.pop()
        self._done.add(name)

    # -------------------------------------------------------------------------------------- datasets
    def _analyze_view(self, ds: Dataset) -> None:
        recorder = _Recorder(self, ds.name)
        df = self._call(
            ds.func, recorder, what=f"view '{ds.name}'", source_file=ds.source_file, spark_conf=ds.spark_conf
        )
        exp.validate(df, ds.expectations, ds.name)
        self._view_frames[ds.name] = df
        self.result.schemas[ds.name] = df.schema
        self.result.streaming[ds.name] = df.isStreaming or recorder.streaming
        self.result.view_inputs[ds.name] = recorder.inputs

    def _analyze_table(self, ds: Dataset) -> None:
        flows = self.graph.flows_into(ds.name)
        schema: StructType | None = None
        streaming = ds.kind == "streaming_table"
        for flow in flows:
            flow_schema = self._analyze_flow(flow)
            streaming = streaming or flow.streaming
            if schema is None and flow_schema is not None:
                schema = flow_schema
        if ds.schema is not None:
            schema = _declared_schema(ds)
        if schema is None:
            schema = self.existing_schema(ds.name)
        if schema is None and not all(f.kind == "snapshot_cdc" for f in flows):
            raise DefinitionError(f"Cannot tell the schema of '{ds.name}': give it a schema=... .")
        if streaming and ds.materialized_only:
            raise DefinitionError(
                f"Materialized view '{ds.name}' ({ds.source_file}) has a streaming query: a materialized "
                f"view reads in batch (spark.read.table / dlt.read); use @dp.table for a streaming table."
            )
        if streaming and ds.kind == "table":
            ds.kind = "streaming_table"
        for flow in flows:
            if flow.kind == "query" and not flow.streaming and ds.kind != "table" and not flow.once:
                what = "sink" if ds.is_sink else "streaming table"
                raise DefinitionError(
                    f"Flow '{flow.name}' ({flow.source_file}) returns a batch DataFrame but writes to the "
                    f"{what} '{ds.name}': read with dlt.read_stream / spark.readStream, or pass "
                    f"once=True to append it one time."
                )
        if ds.kind == "table" and len(flows) > 1:
            raise DefinitionError(f"Materialized view '{ds.name}' can have only one flow.")
        if schema is not None:  # None: a snapshot-function target, created by its flow's first snapshot
            _check_columns(ds, schema)
            exp.validate(empty_frame(self.spark, schema), ds.expectations, ds.name)
            self.result.schemas[ds.name] = schema
        self.result.streaming[ds.name] = ds.kind in ("streaming_table", "sink")

    def _analyze_flow(self, flow: Flow) -> StructType | None:
        recorder = _Recorder(self, flow.name)
        self.result.flow_inputs[flow.name] = recorder.inputs
        if flow.kind == "query":
            conf = {**self.graph.datasets[flow.target].spark_conf, **flow.spark_conf}
            df = self._call(
                flow.func, recorder, what=f"flow '{flow.name}'", source_file=flow.source_file, spark_conf=conf
            )
            flow.streaming = df.isStreaming or recorder.streaming
            flow.inputs = recorder.inputs
            return df.schema
        import localdlt.cdc as cdc  # the AUTO CDC engine

        if flow.kind == "cdc":
            assert flow.cdc is not None
            source = recorder.read_stream(flow.cdc.source)
            flow.streaming = True
            flow.inputs = recorder.inputs
            return cdc.cdc_target_schema(flow.cdc, source)
        assert flow.snapshot is not None
        flow.streaming = False
        if isinstance(flow.snapshot.source, str):
            source = recorder.read(flow.snapshot.source)
            flow.inputs = recorder.inputs
            return cdc.snapshot_target_schema(flow.snapshot, source)
        return cdc.snapshot_target_schema(flow.snapshot, None)

    def _call(
        self,
        func: Any,
        recorder: _Recorder,
        what: str,
        source_file: str | None,
        spark_conf: dict[str, str] | None = None,
    ) -> DataFrame:
        try:
            with context.reading_with(recorder), self._session(spark_conf):
                df = func()
        except DefinitionError:
            raise
        except Exception as err:
            raise DefinitionError(
                f"The query function of {what} ({source_file}) failed while the pipeline was analysed: "
                f"{error_summary(err)}"
            ) from err
        if not isinstance(df, DataFrame):
            raise DefinitionError(
                f"The query function of {what} ({source_file}) must return a Spark DataFrame, "
                f"got {type(df).__name__}."
            )
        return df

    @contextmanager
    def _session(self, spark_conf: dict[str, str] | None) -> Iterator[None]:
        if not spark_conf or self.proxy is None:
            yield
            return
        with self.proxy.using(session_with_conf(self.spark, spark_conf)):
            yield

    # -------------------------------------------------------------------------------------------- order
    def _table_inputs(self, names: list[str], seen: set[str] | None = None) -> set[str]:
        """Tables behind a list of inputs (views are expanded to what they read)."""
        seen = seen or set()
        out: set[str] = set()
        for name in names:
            if name in seen:
                continue
            seen.add(name)
            ds = self.graph.datasets[name]
            if ds.is_view:
                out |= self._table_inputs(self.result.view_inputs.get(name, []), seen)
            else:
                out.add(name)
        return out

    def _order_tables(self) -> None:
        tables = [n for n, ds in self.graph.datasets.items() if not ds.is_view]
        deps = {
            t: self._table_inputs([i for f in self.graph.flows_into(t) for i in f.inputs]) - {t}
            for t in tables
        }
        self.result.table_deps = deps
        order: list[str] = []
        placed: set[str] = set()
        while len(order) < len(tables):
            ready = [t for t in tables if t not in placed and deps[t] <= placed]
            if not ready:  # cycles are caught in ensure(); this is a safety net
                raise DefinitionError(f"Dependency cycle among tables: {sorted(set(tables) - placed)}.")
            for t in ready:
                order.append(t)
                placed.add(t)
        self.result.order = order


def _declared_schema(ds: Dataset) -> StructType:
    return ddl.declared(ds.schema, ds.name).struct


def _check_columns(ds: Dataset, schema: StructType) -> None:
    names = {f.name.lower() for f in schema.fields}
    for what, cols in (("cluster_by", ds.cluster_by), ("partition_cols", ds.partition_cols)):
        missing = [c for c in cols if c.lower() not in names]
        if missing:
            raise DefinitionError(
                f"{what} of dataset '{ds.name}' names column(s) {missing} that the dataset does not have "
                f"(columns: {', '.join(schema.fieldNames())})."
            )
