"""Run part of a pipeline, on rows given from outside: `Subset`, an edit of the loaded graph that
`run_update(..., edit_graph=Subset(...))` applies before the analysis.

- `inputs` replace datasets by rows given in Delta folders: the dataset becomes a streaming table whose only
  flow streams its folder (so downstream code may read it in batch or as a stream, through `dlt.read`,
  `dlt.read_stream`, `spark.read.table` or `spark.readStream.table`). The dataset's own flows, expectations,
  schema and path go; it stays private if it was (a replaced view becomes private). Rows appended to the
  folder later reach the next update only, as new input of a streaming source would.
- `datasets` chooses the datasets that run (tables, streaming tables, views, sinks), with the flows writing
  them; the inputs are available too. Every other dataset is left out, and reading one fails the update
  with a `DefinitionError` of one line naming the reader and the dataset.

The pytest plugin (`localdlt.testing`) is its first user; nothing here depends on pytest.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession

import localdlt.context as context
from localdlt.errors import DefinitionError
from localdlt.graph import Dataset, Flow, PipelineGraph


@dataclass(frozen=True)
class Subset:
    """Which datasets of the pipeline run (`datasets`, None: all) and which are replaced by the rows of a
    Delta folder (`inputs`: dataset name -> folder). Callable on a `PipelineGraph`, which it edits in place
    and returns."""

    inputs: Mapping[str, str] = field(default_factory=dict)
    datasets: Collection[str] | None = None

    def __call__(self, graph: PipelineGraph) -> PipelineGraph:
        _check_names(graph, self.inputs, "Input")
        if self.datasets is not None:
            _check_names(graph, self.datasets, "Selected dataset")
        for name, folder in self.inputs.items():
            _replace_with_input(graph, name, folder)
        if self.datasets is not None:
            _keep_only(graph, set(self.datasets) | set(self.inputs), given=set(self.inputs))
        return graph


def _check_names(graph: PipelineGraph, names: Collection[str], what: str) -> None:
    for name in names:
        ds = graph.datasets.get(name)
        if ds is None:
            known = ", ".join(sorted(graph.datasets))
            raise DefinitionError(
                f"{what} '{name}' is not a dataset of this pipeline; its datasets are: {known}."
            )
        if what == "Input" and ds.is_sink:
            raise DefinitionError(f"Input '{name}' is a sink: only tables and views can be given as inputs.")


def _replace_with_input(graph: PipelineGraph, name: str, folder: str) -> None:
    old = graph.datasets[name]
    graph.datasets[name] = Dataset(
        name=name,
        kind="streaming_table",
        source_file=old.source_file,
        comment=f"rows given as the input '{name}' (from {folder})",
        temporary=old.temporary or old.is_view,
    )
    for flow_name in [f.name for f in graph.flows_into(name)]:
        del graph.flows[flow_name]
    flow_name = name if name not in graph.flows else f"{name}_input"
    graph.add_flow(Flow(name=flow_name, target=name, func=_stream_of(folder), source_file=old.source_file))


def _stream_of(folder: str) -> Callable[[], DataFrame]:
    def given_rows() -> DataFrame:
        return SparkSession.active().readStream.format("delta").load(folder)

    return given_rows


def _keep_only(graph: PipelineGraph, kept: set[str], given: set[str]) -> None:
    left_out = set(graph.datasets) - kept
    selected = sorted(kept - given)

    def refuse(reader: str, name: str) -> DefinitionError:
        return DefinitionError(
            f"'{reader}' reads '{name}', which this run leaves out: it is neither selected (datasets: "
            f"{', '.join(selected) or 'none'}) nor given as an input; select it or give its rows."
        )

    for name in left_out:
        del graph.datasets[name]
    for flow in list(graph.flows.values()):
        if flow.target in left_out:
            del graph.flows[flow.name]
            continue
        source = flow.cdc.source if flow.cdc else flow.snapshot.source if flow.snapshot else None
        if isinstance(source, str) and source in left_out:
            raise refuse(flow.name, source)
        if flow.func is not None:
            flow.func = _guarded(flow.func, flow.name, left_out, refuse)
    for ds in graph.datasets.values():
        if ds.func is not None:
            ds.func = _guarded(ds.func, ds.name, left_out, refuse)


def _guarded(
    func: Callable[..., Any],
    reader_name: str,
    left_out: set[str],
    refuse: Callable[[str, str], DefinitionError],
) -> Callable[..., Any]:
    """`func` with its reads of left-out datasets refused (whichever reader the runtime gives it)."""

    @functools.wraps(func)
    def query(*args: Any, **kwargs: Any) -> Any:
        guard = _Guard(context.current_reader(), reader_name, left_out, refuse)
        with context.reading_with(guard):
            return func(*args, **kwargs)

    return query


@dataclass
class _Guard:
    inner: context.DatasetReader
    reader_name: str
    left_out: set[str]
    refuse: Callable[[str, str], DefinitionError]

    def read(self, name: str) -> Any:
        self._check(name)
        return self.inner.read(name)

    def read_stream(self, name: str) -> Any:
        self._check(name)
        return self.inner.read_stream(name)

    def _check(self, name: str) -> None:
        if name in self.left_out:
            raise self.refuse(self.reader_name, name)
