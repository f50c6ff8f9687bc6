"""What a running flow gets from the executor: where to write, how to read other datasets, how to run its
stream exactly once, and where to report figures. Flow kinds (append, AUTO CDC, snapshot CDC) build on it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

import localdlt.context as context
import localdlt.expectations as exp
import localdlt.freshness as freshness
from localdlt.errors import DefinitionError, FlowError, causes, error_summary
from localdlt.metrics import FlowMetrics
from localdlt.schema_evolution import SchemaChange, evolve

if TYPE_CHECKING:
    from localdlt.graph import Dataset, Flow, PipelineGraph
    from localdlt.storage import Storage

# Delta Lake's session settings that make DML (MERGE, DELETE, UPDATE) idempotent, like txnAppId/txnVersion
# do for DataFrame writes: a commit with an (appId, version) already in the table's log is skipped.
TXN_APP_ID = "spark.databricks.delta.write.txnAppId"
TXN_VERSION = "spark.databricks.delta.write.txnVersion"


@dataclass
class FlowContext:
    spark: SparkSession
    storage: Storage
    graph: PipelineGraph
    pipeline_id: str
    update_id: str
    flow: Flow
    target: Dataset
    target_path: str
    reader: Any  # localdlt.reader.Reader: read(name) / read_stream(name)
    continuous: bool = False
    trigger_interval_seconds: float = 1.0
    stop_event: threading.Event = field(default_factory=threading.Event)
    metrics: FlowMetrics = field(default_factory=FlowMetrics)
    on_progress: Callable[[FlowMetrics], None] = lambda m: None
    # the flow changed its target's schema (columns added or widened, or no longer written)
    on_schema_change: Callable[[SchemaChange], None] = lambda change: None
    conf: dict[str, str] = field(default_factory=dict)
    # set when the flow had nothing to do (no new input): why, for the event log
    no_op_reason: str | None = None

    @property
    def checkpoint_path(self) -> str:
        return self.storage.checkpoint_path(self.flow.name)

    @property
    def app_id(self) -> str:
        """Idempotent-write id of this flow's current checkpoint generation."""
        return f"{self.pipeline_id}:{self.flow.name}:{self.storage.generation(self.flow.name)}"

    def evolve_target(
        self, wanted: StructType, path: str | None = None, keep: frozenset[str] = frozenset()
    ) -> SchemaChange:
        """The target (or the table at `path`, e.g. its hidden state) made to take rows of `wanted` (see
        localdlt.schema_evolution), the change reported for the target. Columns the flow no longer writes
        are tracked only when it is the target's sole flow: with several, each writes its own columns."""
        change = evolve(
            self.spark,
            path or self.target_path,
            wanted,
            flow=self.flow.name,
            dataset=self.target.name,
            keep=keep,
        )
        if len(self.graph.flows_into(self.target.name)) > 1:
            change.missing = []
        if path is None:
            self.on_schema_change(change)
        return change

    def query(self) -> DataFrame:
        """The DataFrame the flow's query function returns, read through the flow's reader."""
        assert self.flow.func is not None
        with context.reading_with(self.reader):
            df = self.flow.func()
        if not isinstance(df, DataFrame):
            raise DefinitionError(
                f"The query function of flow '{self.flow.name}' ({self.flow.source_file}) must return a "
                f"Spark DataFrame, got {type(df).__name__}."
            )
        return df

    def write_options(self, batch_id: int) -> dict[str, str]:
        """Options that make a DataFrame write to the target exactly-once for this batch."""
        return {"txnAppId": self.app_id, "txnVersion": str(batch_id)}

    @contextmanager
    def idempotent_dml(self, session: SparkSession, batch_id: int, suffix: str = "") -> Iterator[None]:
        """Make the Delta DML inside (MERGE/DELETE/UPDATE) exactly-once for this batch.

        `session` must be the batch's own session (`batch_df.sparkSession`): streaming queries run on a
        cloned session, so setting these here does not leak into other flows running at the same time.
        `suffix` tells apart several tables written for one batch (e.g. a target and its hidden state).
        """
        session.conf.set(TXN_APP_ID, self.app_id + suffix)
        session.conf.set(TXN_VERSION, str(batch_id))
        try:
            yield
        finally:
            session.conf.unset(TXN_APP_ID)
            session.conf.unset(TXN_VERSION)

    def run_stream(
        self,
        df: DataFrame,
        batch_fn: Callable[[DataFrame, int], FlowMetrics],
        before_start: Callable[[], None] | None = None,
    ) -> None:
        """Run a streaming DataFrame through `batch_fn` batch by batch, exactly once.

        Triggered updates process what is available now and stop; continuous ones keep going until
        `stop_event` is set. Each batch's figures are added to `self.metrics` and reported. A failure
        raises `FlowError` (`ExpectationViolation` when a fail expectation stopped the batch).
        `before_start` runs before the stream starts, not when a triggered update finds no new input.
        """
        if not self.continuous:
            try:
                why = freshness.stream_has_new_input(df, self.checkpoint_path)
            except Exception as err:  # a check that cannot tell must not fail the flow: run the stream
                why = f"check failed: {type(err).__name__}"
            if why is None:  # every source is covered by the last committed batch: nothing to start
                self.no_op_reason = "no new input since the last committed batch"
                return
        if before_start is not None:
            before_start()
        lock = threading.Lock()
        raised: list[BaseException] = []  # the Python error itself; Spark hands back only its text

        def each_batch(batch_df: DataFrame, batch_id: int) -> None:
            try:
                batch_metrics = batch_fn(batch_df, batch_id)
            except BaseException as err:
                raised.append(err)
                raise
            batch_metrics.batches = 1
            with lock:
                self.metrics.merge(batch_metrics)
            self.on_progress(self.metrics)

        writer = (
            df.writeStream.foreachBatch(each_batch)
            .option("checkpointLocation", self.checkpoint_path)
            .queryName(f"{self.flow.name}")
        )
        if self.continuous:
            writer = writer.trigger(processingTime=f"{self.trigger_interval_seconds} seconds")
        else:
            writer = writer.trigger(availableNow=True)
        query = writer.start()
        try:
            if self.continuous:
                while query.isActive and not self.stop_event.is_set():
                    self.stop_event.wait(0.25)
                if query.isActive:
                    query.stop()
                failure = query.exception()
                if failure is not None:
                    raise failure
            else:
                query.awaitTermination()
        except Exception as err:
            if query.isActive:
                query.stop()
            raise self.flow_error(raised[0] if raised else err) from None
        finally:
            self._add_streamed_view_metrics(query)

    def _add_streamed_view_metrics(self, query: Any) -> None:
        """Expectations on views inside a streaming plan report through the query's progress."""
        streamed = [a for a in getattr(self.reader, "applied", []) if a.observation_name]
        if not streamed:
            return
        totals: dict[str, dict[str, float]] = {}
        for progress in query.recentProgress:
            for name, values in (progress.observedMetrics or {}).items():
                bucket = totals.setdefault(name, {})
                for key, value in values.asDict().items():
                    bucket[key] = bucket.get(key, 0) + (value or 0)
        for applied in streamed:
            m = applied.metrics(totals)
            self.metrics.merge(FlowMetrics(expectations=m.expectations, dropped_records=m.dropped_records))

    def flow_error(self, err: BaseException) -> FlowError:
        if isinstance(err, FlowError):
            return err
        violation = exp.violation_from(err, self.flow.name)
        if violation is not None:
            return violation
        for cause in causes(err):
            if isinstance(cause, FlowError):
                return cause
        return FlowError(self.flow.name, f"Flow '{self.flow.name}' failed: {error_summary(err)}")
