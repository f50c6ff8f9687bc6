"""Run one update of a loaded pipeline: set up tables, run flows in dependency order (independent ones at
the same time), apply expectations, write Delta tables exactly once, and report to the event log."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from localdlt import context, flowretry, freshness, triggers
from localdlt import expectations as exp
from localdlt.analysis import Analysis
from localdlt.errors import DefinitionError, FlowError, PipelineError, error_summary
from localdlt.eventlog import EventLog
from localdlt.flowcontext import FlowContext
from localdlt.graph import Dataset, Flow, PipelineGraph
from localdlt.metrics import FlowMetrics
from localdlt.reader import Reader, SharedViews
from localdlt.schema_evolution import SchemaChange, conform_batch
from localdlt.sessionproxy import SessionProxy, session_with_conf
from localdlt.storage import Storage

# Events reach the Delta event log at the end of the update and, while it runs, at most this often (first
# this long after RUNNING starts): each flush is a Delta commit, and on a small machine they are worth saving.
FLUSH_EVERY_SECONDS = 10.0
#: a continuous update reports each flow's progress (the figures since its last report) at most this often
PROGRESS_EVERY_SECONDS = 5.0

FLOW_TYPES = {"query": "APPEND", "cdc": "CHANGE", "snapshot_cdc": "SNAPSHOT_CHANGE"}


@dataclass
class UpdateOptions:
    full_refresh: bool = False
    full_refresh_tables: list[str] | None = None
    continuous: bool = False
    max_seconds: float | None = None
    max_workers: int = 2
    trigger_interval_seconds: float = 1.0
    #: set from another thread to stop the update (a continuous one ends its streams cleanly)
    stop_event: threading.Event | None = None


@dataclass
class FlowOutcome:
    flow: str
    target: str
    status: str = "QUEUED"
    metrics: FlowMetrics = field(default_factory=FlowMetrics)
    error: BaseException | None = None
    seconds: float = 0.0
    no_op_reason: str | None = None  # the flow had nothing to do (materialized view unchanged, no input)


@dataclass
class UpdateResult:
    update_id: str
    pipeline_id: str
    state: str
    storage: str
    flows: dict[str, FlowOutcome] = field(default_factory=dict)
    seconds: float = 0.0
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETED"


class Update:
    def __init__(
        self,
        spark: SparkSession,
        proxy: SessionProxy,
        graph: PipelineGraph,
        analysis: Analysis,
        storage: Storage,
        events: EventLog,
        conf: dict[str, str],
        options: UpdateOptions,
        on_flow: Callable[[FlowOutcome], None] = lambda o: None,
    ) -> None:
        self.spark = spark
        self.proxy = proxy
        self.graph = graph
        self.analysis = analysis
        self.storage = storage
        self.events = events
        self.conf = conf
        self.max_flow_retries = flowretry.max_flow_retries(conf)
        self.options = options
        self.on_flow = on_flow
        self.stop_event = options.stop_event or threading.Event()
        self.outcomes: dict[str, FlowOutcome] = {
            f.name: FlowOutcome(flow=f.name, target=f.target) for f in graph.flows.values()
        }
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        # per flow: the figures its RUNNING progress events reported so far in this attempt, and when
        self._reported: dict[str, FlowMetrics] = {}
        self._reported_at: dict[str, float] = {}
        # batch views read by several flows: computed once per triggered update
        self.shared_views = SharedViews(set() if options.continuous else analysis.shared_views())

    # ------------------------------------------------------------------------------------ table setup
    def refresh_selection(self) -> set[str]:
        tables = {n for n, ds in self.graph.datasets.items() if not ds.is_view}
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

    def setup_tables(self) -> None:
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
        builder = DeltaTable.createIfNotExists(self.spark).location(path).addColumns(schema)
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

    # ------------------------------------------------------------------------------------------- run
    def run_flows(self) -> None:
        try:
            if self.options.continuous:
                self._run_continuous()
            else:
                self._run_triggered()
        finally:
            self.shared_views.release()

    def _run_triggered(self) -> None:
        order = self.analysis.order
        deps = self.analysis.table_deps
        state: dict[str, str] = {}  # table -> done|failed
        running: dict[Future[bool], str] = {}
        with ThreadPoolExecutor(max_workers=max(1, self.options.max_workers)) as pool:
            while len(state) < len(order):
                for table in order:
                    if table in state or table in running.values():
                        continue
                    if any(state.get(d) == "failed" for d in deps[table]):
                        self._skip_table(table, [d for d in deps[table] if state.get(d) == "failed"])
                        state[table] = "failed"
                        continue
                    if all(state.get(d) == "done" for d in deps[table]):
                        running[pool.submit(self._run_table, table)] = table
                if not running:
                    continue
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    table = running.pop(fut)
                    state[table] = "done" if fut.result() else "failed"

    def _run_continuous(self) -> None:
        """Materialized views once, then every streaming flow until stopped."""
        stop_timer = None
        if self.options.max_seconds is not None:
            stop_timer = threading.Timer(self.options.max_seconds, self.stop_event.set)
            stop_timer.daemon = True
            stop_timer.start()
        try:
            streaming = [n for n in self.analysis.order if self.graph.datasets[n].kind == "streaming_table"]
            for table in self.analysis.order:
                if table not in streaming:
                    self._run_table(table)
            flows = [f for t in streaming for f in self.graph.flows_into(t)]
            with ThreadPoolExecutor(max_workers=max(1, len(flows))) as pool:
                futures = [pool.submit(self._run_flow, f) for f in flows]
                for fut in futures:
                    fut.result()
        finally:
            if stop_timer is not None:
                stop_timer.cancel()

    def _skip_table(self, table: str, failed: list[str]) -> None:
        for flow in self.graph.flows_into(table):
            outcome = self.outcomes[flow.name]
            outcome.status = "SKIPPED"
            self._flow_event(
                flow, "SKIPPED", message=f"Flow '{flow.name}' skipped: upstream {failed} failed."
            )
            self.on_flow(outcome)

    def _run_table(self, table: str) -> bool:
        ok = True
        for flow in self.graph.flows_into(table):
            ok = self._run_flow(flow) and ok
        return ok

    def _run_flow(self, flow: Flow) -> bool:
        outcome = self.outcomes[flow.name]
        ds = self.graph.datasets[flow.target]
        started = time.monotonic()
        outcome.status = "RUNNING"
        self._flow_event(flow, "STARTING")
        self._flow_event(flow, "RUNNING")
        self.on_flow(outcome)
        retries = self.max_flow_retries
        for attempt in range(retries + 1):
            if self._attempt_flow(flow, ds, outcome) or attempt == retries:
                break
            if not flowretry.is_retryable(outcome.error) or self.stop_event.is_set():
                break
            # retried: the failure is a warning in the event log, then the flow starts again
            wait = flowretry.backoff_seconds(attempt + 1)
            self._flow_event(
                flow,
                "FAILED",
                error=outcome.error,
                message=f"{outcome.error} (attempt {attempt + 1} of {retries + 1}; retry in {wait:.0f}s)",
                level="WARN",
            )
            if self.stop_event.wait(wait):
                break
            outcome.metrics, outcome.error, outcome.status = FlowMetrics(), None, "RUNNING"
            outcome.no_op_reason = None
            self._reported.pop(flow.name, None)  # committed batches of the failed attempt stay reported
            self._flow_event(flow, "STARTING")
            self._flow_event(flow, "RUNNING")
            self.on_flow(outcome)
        outcome.seconds = time.monotonic() - started
        self._flow_event(
            flow,
            outcome.status,
            metrics=outcome.metrics.minus(self._reported.pop(flow.name, FlowMetrics())),
            error=outcome.error,
            message=(
                str(outcome.error)
                if outcome.error is not None
                else f"Flow '{flow.name}' has {outcome.status}"
                + (f": {outcome.no_op_reason}." if outcome.no_op_reason else ".")
            ),
        )
        self.on_flow(outcome)
        if time.monotonic() - self._last_flush > FLUSH_EVERY_SECONDS:
            self._last_flush = time.monotonic()
            self.events.flush_in_background()
        return outcome.status != "FAILED"

    def _attempt_flow(self, flow: Flow, ds: Dataset, outcome: FlowOutcome) -> bool:
        """One attempt at running the flow; True when it did not fail."""
        try:
            session = self._session_for(flow, ds)
            with self.proxy.using(session), _jobs_named_after(session, flow.name, self.events.update_id):
                outcome.no_op_reason = self._execute(flow, ds, session, outcome)
            outcome.status = "COMPLETED" if not self.stop_event.is_set() else "STOPPED"
            return True
        except Exception as err:
            if isinstance(err, FlowError):
                outcome.error = err
            else:
                outcome.error = FlowError(flow.name, _flow_message(flow, err))
                outcome.error.__cause__ = err
            outcome.status = "FAILED"
            return False

    def _session_for(self, flow: Flow, ds: Dataset) -> SparkSession:
        conf = {**ds.spark_conf, **flow.spark_conf}
        return session_with_conf(self.spark, {**self.conf, **conf}) if conf else self.spark

    # ----------------------------------------------------------------------------------- flow kinds
    def _execute(self, flow: Flow, ds: Dataset, session: SparkSession, outcome: FlowOutcome) -> str | None:
        path = self.storage.dataset_path(ds)
        reader = Reader(session, self.graph, self.storage, flow.name, self.shared_views)
        ctx = FlowContext(
            spark=session,
            storage=self.storage,
            graph=self.graph,
            pipeline_id=self.events.pipeline_id,
            update_id=self.events.update_id,
            flow=flow,
            target=ds,
            target_path=path,
            reader=reader,
            continuous=self.options.continuous,
            trigger_interval_seconds=triggers.flow_interval(
                flow, ds, self.conf, self.options.trigger_interval_seconds
            ),
            stop_event=self.stop_event,
            metrics=outcome.metrics,
            on_progress=lambda m: self._flow_progress(flow, m),
            on_schema_change=lambda change: self._schema_changed(flow, ds, change),
            conf=self.conf,
        )
        if flow.kind == "cdc":
            from localdlt import cdc

            cdc.run_cdc_flow(ctx)
        elif flow.kind == "snapshot_cdc":
            from localdlt import cdc

            cdc.run_snapshot_flow(ctx)
        elif ds.kind == "table":
            self._materialize(ctx)
        elif flow.once:
            self._append_once(ctx)
        else:
            self._append_stream(ctx)
        # expectations of views read in batch (streamed ones report through the query's progress)
        for view in reader.applied:
            if view.observation is not None and ctx.no_op_reason is None:
                ctx.metrics.merge(_quality_only(view.metrics()))
        return ctx.no_op_reason

    def _query(self, ctx: FlowContext) -> DataFrame:
        assert ctx.flow.func is not None
        with context.reading_with(ctx.reader):
            df = ctx.flow.func()
        if not isinstance(df, DataFrame):
            raise DefinitionError(
                f"The query function of flow '{ctx.flow.name}' ({ctx.flow.source_file}) must return a "
                f"Spark DataFrame, got {type(df).__name__}."
            )
        return df

    def _materialize(self, ctx: FlowContext) -> None:
        """Materialized view: recompute and replace the table's contents in one commit, unless nothing it
        depends on changed since its last refresh (then the refresh is a no-op, as on Databricks)."""
        df = conform(self._query(ctx), ctx.target, self.analysis.schemas[ctx.target.name])
        plan = self._refresh_plan(ctx, df)
        if plan is None:
            return
        applied = exp.apply(df, ctx.target.expectations, ctx.target.name)
        try:
            applied.df.write.format("delta").mode("overwrite").save(ctx.target_path)
        except Exception as err:
            raise ctx.flow_error(err) from None
        if ctx.target.cluster_by:  # an overwrite drops Delta's clustering metadata: set it again
            cols = ", ".join(f"`{c.replace('`', '``')}`" for c in ctx.target.cluster_by)
            path = ctx.target_path.replace("`", "``")
            ctx.spark.sql(f"ALTER TABLE delta.`{path}` CLUSTER BY ({cols})")
        ctx.metrics.merge(applied.metrics())
        ctx.metrics.batches += 1
        if plan.get("fingerprint"):
            state = self.storage.flow_state(ctx.flow.name)
            plan["table_version"] = freshness.delta_version(ctx.target_path)
            self.storage.save_flow_state(ctx.flow.name, {**state, "refresh": plan})

    def _refresh_plan(self, ctx: FlowContext, df: DataFrame) -> dict[str, Any] | None:
        """None when the last refresh still holds (planned as NO_OP); otherwise what to remember after it."""
        ds = ctx.target
        extra = {
            "expectations": [(e.name, e.constraint_sql, e.action) for e in ds.expectations],
            "schema": str(ds.schema),
            "conf": {**self.conf, **ds.spark_conf, **ctx.flow.spark_conf},
            "layout": [ds.partition_cols, ds.cluster_by, ds.path],
        }
        try:
            info = freshness.plan_info(df, extra)
            inputs = freshness.input_versions(info)
            reason = "; ".join(info.reasons)
        except Exception as err:  # a plan we cannot inspect is recomputed
            info, inputs, reason = None, None, f"plan not inspected ({type(err).__name__})"
        last = self.storage.flow_state(ctx.flow.name).get("refresh") or {}
        sources = [
            {"table_name": path, "version": version} for path, version in sorted((inputs or {}).items())
        ]
        if inputs is not None and info is not None:
            if not last:
                reason = "first refresh"
            elif last.get("fingerprint") != info.fingerprint:
                reason = "the query's definition or configuration changed"
            elif last.get("inputs") != inputs:
                reason = "an input changed"
            elif last.get("table_version") != freshness.delta_version(ctx.target_path):
                reason = "the table was changed since its last refresh"
            else:
                ctx.no_op_reason = "no input changed since the last refresh"
                self._planning_event(ctx, "NO_OP", ctx.no_op_reason, sources)
                return None
        self._planning_event(ctx, "COMPLETE_RECOMPUTE", reason, sources)
        if info is None or inputs is None:
            return {}
        return {"fingerprint": info.fingerprint, "inputs": inputs}

    def _planning_event(
        self, ctx: FlowContext, technique: str, reason: str, sources: list[dict[str, Any]]
    ) -> None:
        """`planning_information`, as Databricks reports how it refreshes a materialized view."""
        techniques = [
            {"maintenance_type": f"MAINTENANCE_TYPE_{t}", "is_chosen": t == technique, "is_applicable": True}
            for t in (["NO_OP", "COMPLETE_RECOMPUTE"] if technique == "NO_OP" else ["COMPLETE_RECOMPUTE"])
        ]
        self.events.emit(
            "planning_information",
            {
                "technique_information": techniques,
                "source_table_information": sources,
                "target_table_information": {"table_name": ctx.target.name},
                "reason": reason,
            },
            f"Flow '{ctx.flow.name}' has been planned to be executed as {technique}: {reason}.",
            flow=ctx.flow.name,
            dataset=ctx.target.name,
        )

    def _append_once(self, ctx: FlowContext) -> None:
        """`append_flow(once=True)`: append a batch query one time (again after a full refresh)."""
        state = self.storage.flow_state(ctx.flow.name)
        if state.get("once_done"):
            return
        df = conform(self._query(ctx), ctx.target, self.analysis.schemas[ctx.target.name])
        df = conform_batch(df, ctx.evolve_target(df.schema).missing)
        applied = exp.apply(df, ctx.target.expectations, ctx.target.name)
        try:
            (
                applied.df.write.format("delta")
                .mode("append")
                .option("mergeSchema", "true")
                .options(**ctx.write_options(0))
                .save(ctx.target_path)
            )
        except Exception as err:
            raise ctx.flow_error(err) from None
        ctx.metrics.merge(applied.metrics())
        ctx.metrics.batches += 1
        self.storage.save_flow_state(ctx.flow.name, {**state, "once_done": True})

    def _append_stream(self, ctx: FlowContext) -> None:
        """Streaming table flow: append each micro-batch exactly once (Delta idempotent writes)."""
        schema = self.analysis.schemas[ctx.target.name]
        target = ctx.target
        query = self._query(ctx)
        missing: list[StructField] = []  # the target's columns the flow no longer writes: NULL from now on

        def evolve() -> None:
            missing[:] = ctx.evolve_target(conform(query, target, schema).schema).missing

        def batch(batch_df: DataFrame, batch_id: int) -> FlowMetrics:
            batch_df = conform_batch(conform(batch_df, target, schema), missing)
            applied = exp.apply(batch_df, target.expectations, target.name)
            (
                applied.df.write.format("delta")
                .mode("append")
                .option("mergeSchema", "true")
                .options(**ctx.write_options(batch_id))
                .save(ctx.target_path)
            )
            return applied.metrics()

        ctx.run_stream(query, batch, before_start=evolve)

    # --------------------------------------------------------------------------------------- events
    def _flow_event(
        self,
        flow: Flow,
        status: str,
        metrics: FlowMetrics | None = None,
        error: BaseException | None = None,
        message: str | None = None,
        level: str | None = None,
    ) -> None:
        details: dict[str, Any] = {"status": status}
        if metrics is not None:
            details.update(metrics.to_details())
        self.events.emit(
            "flow_progress",
            details,
            message or f"Flow '{flow.name}' is {status}.",
            level=level
            or ("ERROR" if status == "FAILED" else ("METRICS" if metrics is not None else "INFO")),
            flow=flow.name,
            dataset=flow.target,
            error=error,
        )

    def _schema_changed(self, flow: Flow, ds: Dataset, change: SchemaChange) -> None:
        """A WARN event when a flow changed its target's schema (what an audit of schema changes reads):
        columns added or widened, and columns it no longer writes (reported once: the flow's state keeps
        them until they come back or a full refresh resets it)."""
        state = self.storage.flow_state(flow.name)
        reported = state.get("not_written", [])
        gone = [n for n in change.missing_names if n not in reported]
        if set(change.missing_names) != set(reported):
            self.storage.save_flow_state(flow.name, {**state, "not_written": change.missing_names})
        if not (change.added or change.widened or gone):
            return
        parts = [
            f"{what}: {', '.join(columns)}"
            for what, columns in (
                ("added", change.added),
                ("widened", change.widened),
                ("no longer written, kept as NULL from now on", [f"`{n}`" for n in gone]),
            )
            if columns
        ]
        self.events.emit(
            "schema_change",
            {
                "dataset": ds.name,
                "flow": flow.name,
                "added_columns": change.added,
                "widened_columns": change.widened,
                "removed_columns": gone,
            },
            f"Schema of '{ds.name}' followed its source ({flow.name}): {'; '.join(parts)}.",
            flow=flow.name,
            dataset=ds.name,
            level="WARN",
        )

    def _flow_progress(self, flow: Flow, metrics: FlowMetrics) -> None:
        """After each batch: a continuous update reports the figures since the flow's last report in a
        RUNNING `flow_progress` event (as Databricks does per micro-batch), so the event log shows a
        flow's progress while it runs; summing a flow's events gives its total either way."""
        if self.options.continuous:
            now = time.monotonic()
            with self._lock:
                due = now - self._reported_at.get(flow.name, 0.0) >= PROGRESS_EVERY_SECONDS
                if due:
                    self._reported_at[flow.name] = now
                    current = metrics.copy()
                    delta = current.minus(self._reported.get(flow.name, FlowMetrics()))
                    self._reported[flow.name] = current
            if due:
                self._flow_event(flow, "RUNNING", metrics=delta, message=f"Flow '{flow.name}' is RUNNING.")
                self.events.flush_in_background()
        self.on_flow(self.outcomes[flow.name])

    def emit_definitions(self) -> None:
        for flow in self.graph.flows.values():
            schema = self.analysis.schemas.get(flow.target)
            ds = self.graph.datasets[flow.target]
            self.events.emit(
                "flow_definition",
                {
                    "output_dataset": flow.target,
                    "input_datasets": flow.inputs,
                    "flow_type": "COMPLETE" if ds.kind == "table" else FLOW_TYPES[flow.kind],
                    "dataset_type": "MATERIALIZED_VIEW" if ds.kind == "table" else "STREAMING_TABLE",
                    "schema": [
                        {"name": f.name, "data_type": f.dataType.simpleString()}
                        for f in (schema.fields if schema else [])
                    ],
                    "expectations": [
                        {"name": e.name, "constraint": e.constraint_sql, "action": e.action}
                        for e in ds.expectations
                    ],
                    "explain_text": None,
                },
                f"Flow '{flow.name}' is defined as {FLOW_TYPES[flow.kind]} into '{flow.target}'.",
                flow=flow.name,
                dataset=flow.target,
            )


def conform(df: DataFrame, ds: Dataset, schema: StructType) -> DataFrame:
    """Enforce a declared schema: the query's columns, in the declared order and types."""
    if ds.schema is None:
        return df
    have = {c.lower(): c for c in df.columns}
    missing = [f.name for f in schema.fields if f.name.lower() not in have]
    extra = [c for c in df.columns if c.lower() not in {f.name.lower() for f in schema.fields}]
    if missing or extra:
        raise DefinitionError(
            f"The query of '{ds.name}' does not match its declared schema: missing {missing}, "
            f"not declared {extra}."
        )
    return df.select(*[F.col(have[f.name.lower()]).cast(f.dataType).alias(f.name) for f in schema.fields])


def _same_columns(a: StructType, b: StructType) -> bool:
    return [(f.name.lower(), f.dataType) for f in a.fields] == [
        (f.name.lower(), f.dataType) for f in b.fields
    ]


@contextmanager
def _jobs_named_after(spark: SparkSession, flow: str, update_id: str) -> Iterator[None]:
    """Spark jobs of this thread carry the flow's name as their job group (the Spark UI's jobs page, and
    Spark's event log for profiling) and run in the flow's scheduler pool (flows share the task slots
    fairly); a streaming query started here keeps both for its whole run."""
    sc = spark.sparkContext
    sc.setJobGroup(flow, f"flow {flow} (update {update_id})", interruptOnCancel=False)
    sc.setLocalProperty("spark.scheduler.pool", flow)
    try:
        yield
    finally:
        for key in (
            "spark.jobGroup.id",
            "spark.job.description",
            "spark.job.interruptOnCancel",
            "spark.scheduler.pool",
        ):
            sc.setLocalProperty(key, None)  # type: ignore[arg-type]


def _quality_only(m: FlowMetrics) -> FlowMetrics:
    return FlowMetrics(expectations=m.expectations, dropped_records=m.dropped_records)


def _flow_message(flow: Flow, err: BaseException) -> str:
    return f"Flow '{flow.name}' failed: {error_summary(err)}"
