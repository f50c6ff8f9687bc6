"""The pipeline event log: a Delta table with Databricks' columns, written as the update runs.

Events are buffered and appended in few commits (at the end of the update, and every few seconds while a
long one runs), so the log can be read while an update runs and tells what happened if the process dies.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from localdlt.freshness import delta_version

ORIGIN_FIELDS = (
    "cloud",
    "region",
    "org_id",
    "pipeline_id",
    "pipeline_type",
    "pipeline_name",
    "cluster_id",
    "update_id",
    "maintenance_id",
    "table_id",
    "table_name",
    "flow_id",
    "flow_name",
    "dataset_name",
    "sink_name",
    "source_name",
    "request_id",
)

EVENT_SCHEMA = StructType(
    [
        StructField("id", StringType(), False),
        StructField(
            "sequence",
            StructType(
                [
                    StructField(
                        "data_plane_id",
                        StructType(
                            [StructField("instance", StringType()), StructField("seq_no", LongType())]
                        ),
                    ),
                    StructField("control_plane_seq_no", LongType()),
                ]
            ),
        ),
        StructField(
            "origin",
            StructType(
                [StructField(name, StringType()) for name in ORIGIN_FIELDS]
                + [StructField("batch_id", LongType())]
            ),
        ),
        StructField("timestamp", TimestampType(), False),
        StructField("message", StringType()),
        StructField("level", StringType()),
        StructField("maturity_level", StringType()),
        StructField(
            "error",
            StructType(
                [
                    StructField("fatal", BooleanType()),
                    StructField(
                        "exceptions",
                        ArrayType(
                            StructType(
                                [
                                    StructField("class_name", StringType()),
                                    StructField("message", StringType()),
                                    StructField("stack", ArrayType(StringType())),
                                ]
                            )
                        ),
                    ),
                ]
            ),
        ),
        StructField("details", StringType()),
        StructField("event_type", StringType()),
    ]
)

# No per-column statistics: nobody prunes files of an event log by column ranges, and collecting them is
# most of a short update's first commit in a new process (JVM warm-up: 4.0-4.6 s -> 2.6-2.8 s).
# Checkpoints: Delta writes one every `delta.checkpointInterval` commits, inside the commit that reaches it.
# In a new process that is 6-11 s of cold JVM work, which would land on one short update in five (an update
# commits its events at least twice). The runtime checkpoints the log itself after updates that did work
# (`checkpoint_if_due`, the JVM warm); Delta's own interval stays as the bound for runs of idle updates.
CHECKPOINT_EVERY = 10
TABLE_PROPERTIES = {"delta.dataSkippingNumIndexedCols": "0", "delta.checkpointInterval": "100"}

_sequence_lock = threading.Lock()
_last_sequence = 0


def _next_sequence() -> int:
    """Strictly increasing across updates of any pipeline written by this machine (microsecond clock)."""
    global _last_sequence
    with _sequence_lock:
        _last_sequence = max(_last_sequence + 1, time.time_ns() // 1000)
        return _last_sequence


@dataclass
class EventLog:
    spark: SparkSession
    path: str
    pipeline_id: str
    pipeline_name: str
    update_id: str
    instance: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    _buffer: list[tuple[Any, ...]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _flush_lock: threading.Lock = field(default_factory=threading.Lock)
    #: applied to every error text the log records (the event's message when it reports an error, and each
    #: exception's message): a pipeline can keep values its errors quote (row values, PII) out of the log
    redact: Callable[[str], str] = field(default=lambda text: text)

    def emit(
        self,
        event_type: str,
        details: dict[str, Any],
        message: str,
        *,
        level: str = "INFO",
        flow: str | None = None,
        dataset: str | None = None,
        error: BaseException | None = None,
        update_id: str | None = None,
        batch_id: int | None = None,
    ) -> None:
        origin = {name: None for name in ORIGIN_FIELDS}
        origin.update(
            cloud="local",
            pipeline_id=self.pipeline_id,
            pipeline_type="WORKSPACE",
            pipeline_name=self.pipeline_name,
            cluster_id=f"local-{self.instance}",
            update_id=update_id or self.update_id,
        )
        if flow:
            origin.update(
                flow_name=flow, flow_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.pipeline_id}/{flow}"))
            )
        if dataset:
            origin.update(
                dataset_name=dataset,
                table_name=dataset,
                table_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.pipeline_id}/table/{dataset}")),
            )
        seq = _next_sequence()
        row = (
            str(uuid.uuid4()),
            ((self.instance, seq), seq),
            tuple(origin[name] for name in ORIGIN_FIELDS) + (batch_id,),
            datetime.now(timezone.utc),
            self.redact(message) if error is not None else message,
            level,
            "STABLE",
            _error_struct(error, self.redact) if error is not None else None,
            json.dumps({event_type: details}, default=str),
            event_type,
        )
        with self._lock:
            self._buffer.append(row)

    def flush_in_background(self) -> None:
        """Start a flush on a thread of its own; the next `flush` waits for it (commits stay in order)."""
        threading.Thread(target=self._quiet_flush, daemon=True, name="eventlog-flush").start()

    def flush_after(self, seconds: float) -> threading.Timer:
        """Flush in `seconds` unless cancelled: a short update then writes its events in one commit at the
        end, a long one is readable while it runs."""
        timer = threading.Timer(seconds, self._quiet_flush)
        timer.daemon = True
        timer.start()
        return timer

    def _quiet_flush(self) -> None:
        try:
            self.flush()
        except Exception:  # the final flush reports; a background one must not kill the update
            pass

    def flush(self) -> None:
        """Append buffered events in one Delta commit (safe to call from several threads)."""
        with self._flush_lock:
            with self._lock:
                rows, self._buffer = self._buffer, []
            if not rows:
                return
            try:
                df = self.spark.createDataFrame(_arrow_table(rows), EVENT_SCHEMA)
                writer = df.coalesce(1).write.format("delta").mode("append")
                for key, value in TABLE_PROPERTIES.items():  # taken when the first flush creates the table
                    writer = writer.option(key, value)
                writer.save(self.path)
            except BaseException:
                with self._lock:  # not committed (a Delta commit is all or nothing): the next flush retries
                    self._buffer[:0] = rows
                raise

    def checkpoint_if_due(self, every: int = CHECKPOINT_EVERY) -> bool:
        """Write a Delta checkpoint of the log when `every` commits or more followed the last one (readers
        then replay at most a few commits); returns whether it wrote one."""
        with self._flush_lock:
            behind = commits_since_checkpoint(self.path)
            if behind < every:
                return False
            jvm = self.spark._jvm  # type: ignore[attr-defined]
            jvm.org.apache.spark.sql.delta.DeltaLog.forTable(
                self.spark._jsparkSession, self.path
            ).checkpoint()  # type: ignore[attr-defined]
            return True


def commits_since_checkpoint(table_path: str) -> int:
    """Commits of a local Delta table after its last checkpoint (all of them when it has none)."""
    latest = delta_version(table_path)
    if latest is None:
        return 0
    try:
        last = json.loads((Path(table_path) / "_delta_log" / "_last_checkpoint").read_text())["version"]
    except (OSError, ValueError, KeyError):
        last = -1
    return latest - last


def _as_dict(value: Any, datatype: Any) -> Any:
    """A row tuple (nested tuples for structs) as the nested dicts Arrow takes."""
    if value is None:
        return None
    if isinstance(datatype, StructType):
        return {f.name: _as_dict(v, f.dataType) for f, v in zip(datatype.fields, value, strict=True)}
    if isinstance(datatype, ArrayType):
        return [_as_dict(v, datatype.elementType) for v in value]
    return value


def _arrow_table(rows: list[tuple[Any, ...]]) -> Any:
    """The events as an Arrow table: Spark reads it in the JVM, so writing events never starts Python
    workers (a local list would: seconds of the first flush of every process)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = to_arrow_schema(EVENT_SCHEMA, timezone="UTC")
    return pa.Table.from_pylist([_as_dict(r, EVENT_SCHEMA) for r in rows], schema=schema)


def _error_struct(error: BaseException, redact: Callable[[str], str]) -> tuple[Any, ...]:
    chain: list[tuple[Any, ...]] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 5:
        stack = traceback.format_tb(current.__traceback__)[-5:] if current.__traceback__ else []
        name = f"{type(current).__module__}.{type(current).__qualname__}"
        chain.append((name, redact(str(current)), stack))
        current = current.__cause__
    return (True, chain)
