"""`dlt.read` / `dlt.read_stream` while a flow runs: tables are read from their Delta folders, views are
recomputed where read (with their expectations applied), as on Databricks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.storagelevel import StorageLevel

import localdlt.context as context
import localdlt.expectations as exp
from localdlt.errors import DefinitionError

if TYPE_CHECKING:
    from localdlt.graph import PipelineGraph
    from localdlt.storage import Storage


class SharedViews:
    """Batch views that several flows of one triggered update read (a snapshot table's source view feeds
    both the table and its quarantine): computed once per update and cached, so every reader sees the same
    rows, a JDBC source is queried once and the query is planned once. Each reader still applies the
    view's expectations itself. Nothing is shared in a continuous update, whose flows read the latest data
    as they go, nor between sessions (flows with their own Spark settings)."""

    def __init__(self, names: set[str]) -> None:
        self.names = set(names)
        self._frames: dict[tuple[str, int], DataFrame] = {}
        self._locks: dict[tuple[str, int], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, name: str, spark: SparkSession, compute: Callable[[], DataFrame]) -> DataFrame:
        if name not in self.names:
            return compute()
        key = (name, id(spark))
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            df = self._frames.get(key)
            if df is None:
                df = compute()
                if df.isStreaming:
                    return df
                df = df.persist(StorageLevel.MEMORY_AND_DISK)
                self._frames[key] = df
            return df

    def release(self) -> None:
        with self._guard:
            frames, self._frames = list(self._frames.values()), {}
        for df in frames:
            df.unpersist()


class Reader:
    def __init__(
        self,
        spark: SparkSession,
        graph: PipelineGraph,
        storage: Storage,
        flow: str,
        shared: SharedViews | None = None,
    ) -> None:
        self.spark = spark
        self.graph = graph
        self.storage = storage
        self.flow = flow
        self.shared = shared or SharedViews(set())
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

        def compute() -> DataFrame:
            with context.reading_with(self):
                return ds.func()

        df = self.shared.get(name, self.spark, compute)
        if ds.expectations:
            applied = exp.apply(df, ds.expectations, name)
            self.applied.append(applied)
            return applied.df
        return df
