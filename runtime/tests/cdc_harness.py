"""Runs an AUTO CDC flow of the local runtime on a real Delta source, without the executor: a FlowContext
with a tiny reader over a Delta table that the test appends change batches to (one file per append, and
the stream reads one file per micro-batch, so each append is one batch)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from localdlt import cdc
from localdlt.flowcontext import FlowContext
from localdlt.graph import CdcSpec, Dataset, Flow, PipelineGraph, SnapshotCdcSpec
from localdlt.storage import Storage


class DeltaReader:
    def __init__(self, spark: SparkSession, paths: dict[str, str]) -> None:
        self.spark = spark
        self.paths = paths
        self.applied: list[Any] = []

    def read(self, name: str) -> DataFrame:
        return self.spark.read.format("delta").load(self.paths[name])

    def read_stream(self, name: str) -> DataFrame:
        return self.spark.readStream.format("delta").option("maxFilesPerTrigger", 1).load(self.paths[name])


class CdcHarness:
    def __init__(
        self,
        spark: SparkSession,
        root: Path,
        schema: str,
        target_properties: dict[str, str] | None = None,
        conf: dict[str, str] | None = None,
    ) -> None:
        self.spark = spark
        self.root = root
        self.schema = schema
        self.storage = Storage.at(root / "storage")
        self.graph = PipelineGraph()
        self.target = Dataset(name="target", kind="streaming_table", table_properties=target_properties or {})
        self.graph.add_dataset(self.target)
        self.target_path = self.storage.table_path("target")
        self.sources: dict[str, str] = {}
        self.conf = conf or {}

    def source(self, name: str = "src") -> str:
        if name not in self.sources:
            path = str(self.root / "sources" / name)
            self.spark.createDataFrame([], self.schema).write.format("delta").mode("ignore").save(path)
            self.sources[name] = path
        return self.sources[name]

    def append(self, rows: list[tuple], name: str = "src") -> None:
        path = self.source(name)
        self.spark.createDataFrame(rows, self.schema).coalesce(1).write.format("delta").mode("append").save(
            path
        )

    def flow(self, name: str = "f", once: bool = False, **spec: Any) -> Flow:
        spec.setdefault("source", "src")
        self.source(spec["source"])
        flow = Flow(name=name, target="target", kind="cdc", once=once, cdc=CdcSpec(**spec))
        self.graph.add_flow(flow)
        return flow

    def snapshot_flow(self, name: str = "f", **spec: Any) -> Flow:
        if isinstance(spec.get("source"), str):
            self.source(spec["source"])
        flow = Flow(name=name, target="target", kind="snapshot_cdc", snapshot=SnapshotCdcSpec(**spec))
        self.graph.add_flow(flow)
        return flow

    def context(self, flow: Flow) -> FlowContext:
        return FlowContext(
            spark=self.spark,
            storage=self.storage,
            graph=self.graph,
            pipeline_id="test-pipeline",
            update_id=uuid.uuid4().hex,
            flow=flow,
            target=self.target,
            target_path=self.target_path,
            reader=DeltaReader(self.spark, self.sources),
            conf=self.conf,
        )

    def _ensure_target(self, flow: Flow) -> None:
        from localdlt.cdc.common import delta_exists

        if delta_exists(self.spark, self.target_path):
            return
        if flow.kind == "cdc":
            src = self.spark.read.format("delta").load(self.sources[flow.cdc.source])
            schema = cdc.cdc_target_schema(flow.cdc, src)
        else:
            src = (
                self.spark.read.format("delta").load(self.sources[flow.snapshot.source])
                if isinstance(flow.snapshot.source, str)
                else None
            )
            schema = cdc.snapshot_target_schema(flow.snapshot, src)
            if schema is None:
                return
        self.spark.createDataFrame([], schema).write.format("delta").save(self.target_path)

    def run(self, flow: Flow) -> FlowContext:
        """One triggered update of the flow; returns its context (metrics in ctx.metrics)."""
        self._ensure_target(flow)
        ctx = self.context(flow)
        if flow.kind == "cdc":
            cdc.run_cdc_flow(ctx)
        else:
            cdc.run_snapshot_flow(ctx)
        return ctx

    def rows(self, order: list[str] | None = None) -> list[tuple]:
        df = self.spark.read.format("delta").load(self.target_path)
        return sorted((tuple(r) for r in df.collect()), key=repr)

    def columns(self) -> list[str]:
        return self.spark.read.format("delta").load(self.target_path).columns
