"""Run the flows of one update of a loaded pipeline: in dependency order (independent ones at the same time),
each with its own session settings, retried when it fails for a reason worth retrying, stopped on request;
report each flow's progress to the event log and the progress display. The tables were set up before
(`localdlt.tablesetup`); what a flow does by kind is in `localdlt.flowkinds`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

from pyspark.sql import SparkSession

import localdlt.ddl as ddl
import localdlt.flowkinds as flowkinds
import localdlt.flowretry as flowretry
import localdlt.sinks as sinks
import localdlt.triggers as triggers
from localdlt.analysis import Analysis
from localdlt.errors import FlowError, error_summary
from localdlt.eventlog import EventLog
from localdlt.flowcontext import FlowContext
from localdlt.graph import Dataset, Flow, PipelineGraph
from localdlt.metrics import FlowMetrics
from localdlt.reader import Reader, SharedViews
from localdlt.schema_evolution import SchemaChange
from localdlt.sessionproxy import SessionProxy, session_with_conf
from localdlt.storage import Storage
from localdlt.update_types import FlowOutcome, UpdateOptions

# Events reach the Delta event log at the end of the update and, while it runs, at most this often (first
# this long after RUNNING starts): each flush is a Delta commit, and on a small machine they are worth saving.
FLUSH_EVERY_SECONDS = 10.0
#: a continuous update reports each flow's progress (the figures since its last report) at most this often
PROGRESS_EVERY_SECONDS = 5.0

FLOW_TYPES = {"query": "APPEND", "cdc": "CHANGE", "snapshot_cdc": "SNAPSHOT_CHANGE"}
DATASET_TYPES = {"table": "MATERIALIZED_VIEW", "streaming_table": "STREAMING_TABLE", "sink": "SINK"}


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
            streaming = [
                n for n in self.analysis.order if self.graph.datasets[n].kind in ("streaming_table", "sink")
            ]
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

    def _execute(self, flow: Flow, ds: Dataset, session: SparkSession, outcome: FlowOutcome) -> str | None:
        """Run the flow with its FlowContext; returns why it had nothing to do, if so."""
        path = sinks.sink_path(ds) if ds.is_sink else self.storage.dataset_path(ds)
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
        return flowkinds.run_flow(ctx, self.analysis.schemas, self.events)

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
                    "dataset_type": DATASET_TYPES[ds.kind],
                    "private": ds.temporary,
                    "table_constraints": ddl.constraints(ds.schema),
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


def _flow_message(flow: Flow, err: BaseException) -> str:
    return f"Flow '{flow.name}' failed: {error_summary(err)}"
