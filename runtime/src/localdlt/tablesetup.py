"""Before an update's flows run: create the tables that are missing, and empty or recreate those chosen for
a full refresh (with their flows' checkpoints and hidden state), unless `pipelines.reset.allowed` is false.
A sink is never created nor emptied here: a full refresh only resets the checkpoints of the flows into it
(so they append what they read again), as on Databricks."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql.types import StructType

import localdlt.ddl as ddl
import localdlt.freshness as freshness
from localdlt.analysis import Analysis
from localdlt.errors import DefinitionError, PipelineError, error_summary
from localdlt.eventlog import EventLog
from localdlt.graph import Dataset, PipelineGraph
from localdlt.storage import Storage
from localdlt.update_types import UpdateOptions


@dataclass
class TableSetup:
    """The tables of one update, set up by `run()` before its flows run (several tables at a time)."""

    spark: SparkSession
    graph: PipelineGraph
    analysis: Analysis
    storage: Storage
    events: EventLog
    options: UpdateOptions

    def refresh_selection(self) -> set[str]:
        """The tables this update fully refreshes (`--full-refresh`, `--full-refresh-tables`)."""
        tables = {n for n, ds in self.graph.datasets.items() if not ds.is_view}  # sinks too
        if self.options.full_refresh:
            return tables
        chosen = set(self.options.full_refresh_tables or [])
        unknown = chosen - tables
        if unknown:
            raise DefinitionError(
                f"--full-refresh-tables names {sorted(unknown)}, not tables of this pipeline "
                f"(tables: {', '.join(sorted(tables))})."
            )
        return chosen

    def run(self) -> None:
        """Create missing tables, and reset those chosen for a full refresh (unless reset is disallowed)."""
        selection = self.refresh_selection()
        with ThreadPoolExecutor(max_workers=max(1, self.options.max_workers)) as pool:
            futures = {name: pool.submit(self._setup_table, name, selection) for name in self.analysis.order}
            for name, fut in futures.items():
                try:
                    fut.result()
                except PipelineError:
                    raise
                except Exception as err:
                    raise DefinitionError(f"Cannot set up table '{name}': {error_summary(err)}") from err

    def _setup_table(self, name: str, selection: set[str]) -> None:
        ds = self.graph.datasets[name]
        if ds.is_sink:
            if name in selection:
                for flow in self.graph.flows_into(name):
                    self.storage.reset_flow(flow.name)
            return
        path = self.storage.dataset_path(ds)
        reset = name in selection and ds.reset_allowed
        if name in selection and not ds.reset_allowed:
            self.events.emit(
                "user_action",
                {"action": "FULL_REFRESH_SKIPPED", "dataset": name},
                f"Full refresh skipped for '{name}': pipelines.reset.allowed is false.",
                dataset=name,
                level="WARN",
            )
        schema = self.analysis.schemas.get(name)
        if schema is None:  # a snapshot-function target: its flow creates it from the first snapshot
            if reset:
                shutil.rmtree(path, ignore_errors=True)
        else:
            self._create_table(ds, path, schema, replace=reset)
        if reset:
            for flow in self.graph.flows_into(name):
                self.storage.reset_flow(flow.name)
            shutil.rmtree(self.storage.state_path(name), ignore_errors=True)

    def _create_table(self, ds: Dataset, path: str, schema: StructType, replace: bool) -> None:
        """Create the table if missing; with `replace` (full refresh) empty it first."""
        if freshness.delta_version(path) is not None:  # a Delta table already (read from its log folder)
            same_shape = _same_columns(self.spark.read.format("delta").load(path).schema, schema)
            if same_shape and replace:
                self._truncate(ds, path)
                return
            if same_shape or (ds.kind != "table" and not replace):
                return  # streaming tables evolve by adding columns (mergeSchema) as they append
            shutil.rmtree(path)  # a reset or a materialized view whose query changed shape: recreate
        builder = DeltaTable.createIfNotExists(self.spark).location(path)
        generated = ddl.generated_columns(ds.schema)  # Delta generated columns: computed on write
        for f in schema.fields:
            if f.name in generated:
                comment = (f.metadata or {}).get("comment")
                builder = builder.addColumn(
                    f.name, f.dataType, f.nullable, generatedAlwaysAs=generated[f.name], comment=comment
                )
            else:
                builder = builder.addColumns([f])
        if ds.comment:
            builder = builder.comment(ds.comment)
        for key, value in ds.table_properties.items():
            builder = builder.property(key, value)
        if ds.partition_cols:
            builder = builder.partitionedBy(*ds.partition_cols)
        if ds.cluster_by:
            builder = builder.clusterBy(*ds.cluster_by)
        try:
            builder.execute()
        except Exception as err:
            raise DefinitionError(f"Cannot set up table '{ds.name}' at {path}: {error_summary(err)}") from err

    def _truncate(self, ds: Dataset, path: str) -> None:
        """Empty the table for a full refresh, keeping its properties and history. An append-only table
        (`delta.appendOnly`) refuses deletes: a full refresh lifts that for the truncation only."""
        table = f"delta.`{path.replace(chr(96), chr(96) * 2)}`"
        properties = DeltaTable.forPath(self.spark, path).detail().first().properties or {}
        append_only = str(properties.get("delta.appendOnly", "false")).lower() == "true"
        try:
            if append_only:
                self.spark.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ('delta.appendOnly' = 'false')")
            self.spark.sql(f"DELETE FROM {table}")
        except Exception as err:
            raise DefinitionError(
                f"Cannot empty table '{ds.name}' at {path} for a full refresh: {error_summary(err)}"
            ) from err
        finally:
            if append_only:
                self.spark.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ('delta.appendOnly' = 'true')")


def _same_columns(a: StructType, b: StructType) -> bool:
    return [(f.name.lower(), f.dataType) for f in a.fields] == [
        (f.name.lower(), f.dataType) for f in b.fields
    ]
