"""Where the `dlt` API finds the pipeline being defined and the reader of the flow being run.

The loader sets the graph while it imports pipeline files; the executor sets a reader (per thread) while
it calls a query function, so `dlt.read(...)` inside a flow resolves against the running update.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from localdlt.errors import DefinitionError

if TYPE_CHECKING:
    from localdlt.graph import PipelineGraph


class DatasetReader(Protocol):
    def read(self, name: str) -> Any: ...

    def read_stream(self, name: str) -> Any: ...


_graph: PipelineGraph | None = None
_current_file: str | None = None
_local = threading.local()


def current_graph() -> PipelineGraph:
    if _graph is None:
        raise DefinitionError(
            "The dlt API was used outside a pipeline: pipeline files are loaded by the runtime "
            "(`localdlt run PATH --storage DIR`, or its pytest plugin), not imported directly."
        )
    return _graph


def current_file() -> str | None:
    return _current_file


@contextmanager
def defining(graph: PipelineGraph, source_file: str | None) -> Iterator[None]:
    global _graph, _current_file
    previous = (_graph, _current_file)
    _graph, _current_file = graph, source_file
    try:
        yield
    finally:
        _graph, _current_file = previous


def current_reader() -> DatasetReader:
    reader = getattr(_local, "reader", None)
    if reader is None:
        raise DefinitionError(
            "dlt.read / dlt.read_stream can only be called inside a dataset's query function, "
            "while the pipeline runs."
        )
    return reader


@contextmanager
def reading_with(reader: DatasetReader) -> Iterator[None]:
    previous = getattr(_local, "reader", None)
    _local.reader = reader
    try:
        yield
    finally:
        _local.reader = previous
