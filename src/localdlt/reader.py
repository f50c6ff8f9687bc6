"""`dlt.read` / `dlt.read_stream` while a flow runs: tables are read from their Delta folders, views are
recomputed where read (with their expectations applied), as on Databricks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession

from localdlt import context
from localdlt import expectations as exp
from localdlt.errors import DefinitionError

if TYPE_CHECKING:
    from localdlt.graph import PipelineGraph
    from localdlt.storage import Storage


class Reader:
    def __init__(self, spark: SparkSession, graph: PipelineGraph, storage: Storage, flow: str) -> None:
        self.spark = spark
        self.graph = graph
        self.storage = storage
        self.flow = flow
        self.applied: list[exp.AppliedExpectations] = []  # views' expectations seen by this flow

    def path_of(self, name: str) -> str:
        ds = self.graph.datasets[name]
        return self.storage.dataset_path(ds)

    def read(self, name: str) -> DataFrame:
        ds = self._dataset(name)
        if ds.is_view:
            return self._view(name)
        return self.spark.read.format("delta").load(self.path_of(name))

    def read_stream(self, name: str) -> DataFrame:
        ds = self._dataset(name)
        if ds.is_view:
            df = self._view(name)
            if not df.isStreaming:
                raise DefinitionError(
                    f"Flow '{self.flow}' reads view '{name}' as a stream, but the view is a batch query."
                )
            return df
        return self.spark.readStream.format("delta").load(self.path_of(name))

    def _dataset(self, name: str):  # noqa: ANN202
        ds = self.graph.datasets.get(name)
        if ds is None:
            raise DefinitionError(f"Flow '{self.flow}' reads dataset '{name}', which is not defined.")
        return ds

    def _view(self, name: str) -> DataFrame:
        ds = self.graph.datasets[name]
        assert ds.func is not None
        with context.reading_with(self):
            df = ds.func()
        if ds.expectations:
            applied = exp.apply(df, ds.expectations, name)
            self.applied.append(applied)
            return applied.df
        return df
