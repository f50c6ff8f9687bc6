"""`spark.read.table("LIVE.x")` (older pipeline code) and `spark.read.table("x")` for a dataset of the
pipeline resolve to `dlt.read("x")` while an update runs, as on Databricks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyspark.sql import DataFrameReader, SparkSession
from pyspark.sql.streaming import DataStreamReader

import localdlt.context as context


def _dataset_name(name: str, datasets: set[str]) -> str | None:
    if name.lower().startswith("live."):
        return name[5:]
    return name if name in datasets else None


@contextmanager
def live_tables(datasets: set[str]) -> Iterator[None]:
    originals = (DataFrameReader.table, DataStreamReader.table, SparkSession.table)

    def batch_table(self: Any, tableName: str) -> Any:  # noqa: N803 - pyspark's parameter name
        name = _dataset_name(tableName, datasets)
        if name is not None:
            return context.current_reader().read(name)
        return originals[0](self, tableName)

    def stream_table(self: Any, tableName: str) -> Any:  # noqa: N803
        name = _dataset_name(tableName, datasets)
        if name is not None:
            return context.current_reader().read_stream(name)
        return originals[1](self, tableName)

    def session_table(self: Any, tableName: str) -> Any:  # noqa: N803
        name = _dataset_name(tableName, datasets)
        if name is not None:
            return context.current_reader().read(name)
        return originals[2](self, tableName)

    DataFrameReader.table = batch_table  # type: ignore[method-assign]
    DataStreamReader.table = stream_table  # type: ignore[method-assign]
    SparkSession.table = session_table  # type: ignore[method-assign]
    try:
        yield
    finally:
        DataFrameReader.table, DataStreamReader.table, SparkSession.table = originals  # type: ignore[method-assign]
