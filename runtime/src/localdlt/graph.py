"""The pipeline's dataflow graph: datasets, the flows that write them, and their expectations.

Pipeline files fill a `PipelineGraph` through the `dlt` API (`localdlt.api`); the executor reads it.
Nothing here touches Spark.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from localdlt.errors import DefinitionError

Action = Literal["warn", "drop", "fail"]
DatasetKind = Literal["table", "streaming_table", "view", "sink"]
FlowKind = Literal["query", "cdc", "snapshot_cdc"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_identifier(name: str, what: str) -> str:
    """Dataset and flow names become table names and folder names: keep them to SQL identifiers."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise DefinitionError(
            f"{what} name {name!r} is not a valid identifier: use letters, digits and '_', "
            f"starting with a letter or '_'."
        )
    return name


@dataclass(frozen=True)
class Expectation:
    name: str
    constraint: Any  # a SQL boolean expression string, or a pyspark Column
    action: Action

    @property
    def constraint_sql(self) -> str:
        return self.constraint if isinstance(self.constraint, str) else str(self.constraint)


@dataclass(frozen=True)
class SinkSpec:
    """Where a sink's rows go: `create_sink` (format "delta", options path or tableName) or
    `foreach_batch_sink` (format "foreach_batch", `func(df, batch_id)` per micro-batch)."""

    format: str
    options: dict[str, str] = field(default_factory=dict)
    func: Callable[[Any, int], Any] | None = None


@dataclass
class Dataset:
    """A table (materialized view or streaming table), a view, or a sink (kind "sink": a destination
    outside the pipeline that append flows write to and nothing reads)."""

    name: str
    kind: DatasetKind
    source_file: str | None = None
    comment: str | None = None
    spark_conf: dict[str, str] = field(default_factory=dict)
    table_properties: dict[str, str] = field(default_factory=dict)
    partition_cols: list[str] = field(default_factory=list)
    cluster_by: list[str] = field(default_factory=list)
    schema: Any = None  # StructType or DDL string
    temporary: bool = False  # `temporary=True` or `private=True`: materialised, not published
    path: str | None = None
    expectations: list[Expectation] = field(default_factory=list)
    # a view's query (tables get theirs through their flows)
    func: Callable[[], Any] | None = None
    # set by create_streaming_table: the table exists only as a target of flows
    explicit_target: bool = False
    # `@dp.materialized_view`: a materialized view whatever its query (`@dp.table` decides from the query)
    materialized_only: bool = False
    sink: SinkSpec | None = None

    @property
    def is_view(self) -> bool:
        return self.kind == "view"

    @property
    def is_sink(self) -> bool:
        return self.kind == "sink"

    @property
    def what(self) -> str:
        return "Sink" if self.is_sink else "Dataset"

    @property
    def reset_allowed(self) -> bool:
        return str(self.table_properties.get("pipelines.reset.allowed", "true")).lower() != "false"


@dataclass
class CdcSpec:
    """Parameters of an AUTO CDC flow (`apply_changes` / `create_auto_cdc_flow`)."""

    source: str
    keys: list[str]
    sequence_by: Any  # column name, SQL expression string, or Column (e.g. struct of columns)
    where: Any = None
    ignore_null_updates: bool = False
    ignore_null_updates_column_list: list[str] | None = None
    ignore_null_updates_except_column_list: list[str] | None = None
    apply_as_deletes: Any = None
    apply_as_truncates: Any = None
    column_list: list[str] | None = None
    except_column_list: list[str] | None = None
    stored_as_scd_type: int = 1
    track_history_column_list: list[str] | None = None
    track_history_except_column_list: list[str] | None = None


@dataclass
class SnapshotCdcSpec:
    """Parameters of an AUTO CDC FROM SNAPSHOT flow (`apply_changes_from_snapshot`)."""

    source: Any  # dataset name (str) or function(latest_version) -> (DataFrame, version) | None
    keys: list[str]
    stored_as_scd_type: int = 1
    track_history_column_list: list[str] | None = None
    track_history_except_column_list: list[str] | None = None


@dataclass
class Flow:
    name: str
    target: str
    kind: FlowKind = "query"
    func: Callable[[], Any] | None = None
    source_file: str | None = None
    comment: str | None = None
    spark_conf: dict[str, str] = field(default_factory=dict)
    once: bool = False
    cdc: CdcSpec | None = None
    snapshot: SnapshotCdcSpec | None = None
    # filled by the analysis
    inputs: list[str] = field(default_factory=list)
    streaming: bool = False


@dataclass
class PipelineGraph:
    datasets: dict[str, Dataset] = field(default_factory=dict)
    flows: dict[str, Flow] = field(default_factory=dict)
    # collecting mode (validation): errors are appended here instead of raised, and `failed` names the
    # datasets found wrong, whose readers are then not reported again
    errors: list[DefinitionError] | None = None
    failed: set[str] = field(default_factory=set)
    _twice: set[str] = field(default_factory=set)  # duplicate datasets (their own flow is not reported)

    def fail(self, err: DefinitionError, dataset: str | None = None) -> None:
        """Raise `err`, or in collecting mode record it (and `dataset` as failed)."""
        if self.errors is None:
            raise err
        self.errors.append(err)
        if dataset is not None:
            self.failed.add(dataset)

    def add_dataset(self, ds: Dataset) -> Dataset:
        check_identifier(ds.name, "Dataset")
        existing = self.datasets.get(ds.name)
        if existing is not None:
            self._twice.add(ds.name)
            self.fail(
                DefinitionError(
                    f"{ds.what} '{ds.name}' is defined twice ({_where(existing.source_file)} and "
                    f"{_where(ds.source_file)}); dataset and sink names must be unique in a pipeline."
                ),
                ds.name,
            )
            return ds  # collecting: the first definition stays
        self.datasets[ds.name] = ds
        return ds

    def add_flow(self, flow: Flow) -> Flow:
        check_identifier(flow.name, "Flow")
        existing = self.flows.get(flow.name)
        if existing is not None:
            if flow.name == flow.target and flow.name in self._twice and self.errors is not None:
                return flow  # the flow of a dataset defined twice: reported as such already
            self.fail(
                DefinitionError(
                    f"Flow '{flow.name}' is defined twice ({_where(existing.source_file)} and "
                    f"{_where(flow.source_file)}); give one of them another name (flow_name / name)."
                ),
                flow.target,
            )
            return flow
        self.flows[flow.name] = flow
        return flow

    def flows_into(self, target: str) -> list[Flow]:
        return [f for f in self.flows.values() if f.target == target]

    def validate_targets(self) -> None:
        """Every flow writes a table defined in the pipeline; every table is written by some flow."""
        for flow in list(self.flows.values()):
            err = self._target_error(flow)
            if err is not None:
                if self.errors is not None:
                    del self.flows[flow.name]  # collecting: the flow is left out of the analysis
                self.fail(err, flow.target if flow.target in self.datasets else None)
        for ds in self.datasets.values():
            kinds = {f.kind for f in self.flows_into(ds.name)}
            if "snapshot_cdc" in kinds and len(self.flows_into(ds.name)) > 1:
                self.fail(
                    DefinitionError(
                        f"Table '{ds.name}' is written by an AUTO CDC FROM SNAPSHOT flow and by other flows; "
                        f"a snapshot target must have that one flow only."
                    ),
                    ds.name,
                )
            elif (
                not (ds.is_view or ds.is_sink) and not self.flows_into(ds.name) and ds.name not in self.failed
            ):
                self.fail(
                    DefinitionError(
                        f"Table '{ds.name}' ({_where(ds.source_file)}) has no flow writing to it: add an "
                        f"@dlt.append_flow(target='{ds.name}') or dlt.apply_changes(target='{ds.name}', ...)."
                    ),
                    ds.name,
                )

    def _target_error(self, flow: Flow) -> DefinitionError | None:
        ds = self.datasets.get(flow.target)
        if ds is None:
            return DefinitionError(
                f"Flow '{flow.name}' ({_where(flow.source_file)}) writes to '{flow.target}', which is "
                f"not defined: create it first with dlt.create_streaming_table('{flow.target}')."
            )
        if ds.is_view:
            return DefinitionError(f"Flow '{flow.name}' writes to '{flow.target}', which is a view.")
        if ds.is_sink and flow.kind != "query":
            return DefinitionError(
                f"AUTO CDC flow '{flow.name}' writes to sink '{flow.target}': only append flows "
                f"(@dp.append_flow(target='{flow.target}')) may write to a sink."
            )
        if flow.kind != "query" and ds.kind != "streaming_table":
            return DefinitionError(
                f"AUTO CDC flow '{flow.name}' must write to a streaming table created with "
                f"dlt.create_streaming_table('{flow.target}'), not to a materialized view."
            )
        return None


def _where(source_file: str | None) -> str:
    return source_file or "<unknown file>"
