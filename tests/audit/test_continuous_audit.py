"""A continuous update gets audit rows while it runs: derived from its RUNNING progress events with its
figures so far, then replaced by its final figures once it stopped (a real continuous run of the local
runtime, stopped as a user stops it: Ctrl-C)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from pyspark.errors import AnalysisException

from inventory_bronze.audit.store import AUDIT_EXPECTATIONS, AUDIT_LOG, Location, audit_local, local_events
from localdlt import ConsoleProgress, UpdateOptions, run_update

TARGETS = {"bz_ticks": "test.ticks"}
SCHEMA = "id BIGINT, load_timestamp TIMESTAMP, batch_id STRING"

PIPELINE = """
import dlt

@dlt.table
@dlt.expect_or_drop("id_even", "id % 2 = 0")
def bz_ticks():
    return spark.readStream.format("delta").load("{source}")
"""


def _append(spark: Any, source: Path, ids: range) -> None:
    df = spark.range(ids.start, ids.stop).selectExpr(
        "id", "current_timestamp() AS load_timestamp", "'b' AS batch_id"
    )
    df.write.format("delta").mode("append").save(str(source))


def _running_progress(spark: Any, storage: Path) -> int:
    try:
        events = local_events(spark, storage)
    except AnalysisException:  # the event log's first commit is being written
        return 0
    if events is None:
        return 0
    return events.where(
        "event_type = 'flow_progress' AND get_json_object(details, '$.flow_progress.status') = 'RUNNING' "
        "AND get_json_object(details, '$.flow_progress.metrics.num_output_rows') > 0"
    ).count()


def test_continuous_update_is_audited_while_it_runs(spark: Any, tmp_path: Path) -> None:
    source = tmp_path / "source"
    storage = tmp_path / "storage"
    code = tmp_path / "pipeline.py"
    code.write_text(PIPELINE.format(source=source))
    _append(spark, source, range(0, 10))  # 5 kept, 5 dropped
    seen: dict[str, Any] = {}

    def audit_while_running() -> None:
        try:
            deadline = time.monotonic() + 240
            while _running_progress(spark, storage) == 0 and time.monotonic() < deadline:
                time.sleep(1)
            result = audit_local(spark, storage, targets=TARGETS)
            seen["updates"] = result.updates
            seen["rows"] = Location.local(storage).read(spark, AUDIT_LOG).collect()
        finally:
            os.kill(os.getpid(), signal.SIGINT)  # stop the update as a user does

    auditor = threading.Thread(target=audit_while_running)
    auditor.start()
    result = run_update(
        [code],
        storage / "ticks",
        options=UpdateOptions(continuous=True, max_seconds=300, trigger_interval_seconds=0.5),
        pipeline_name="ticks",
        spark=spark,
        progress=ConsoleProgress(quiet=True),
    )
    auditor.join()
    assert result.ok, result.error

    (running,) = seen["rows"]
    assert seen["updates"] == [result.update_id]
    assert (running.update_id, running.update_state, running.status) == (
        result.update_id,
        "RUNNING",
        "RUNNING",
    )
    assert (running.rows_written, running.rows_dropped) == (5, 5)

    final = audit_local(spark, storage, targets=TARGETS)
    assert final.updates == [result.update_id]
    (done,) = Location.local(storage).read(spark, AUDIT_LOG).collect()
    assert (done.update_state, done.status, done.flow_status) == ("COMPLETED", "SUCCESS", "STOPPED")
    assert (done.rows_written, done.rows_dropped, done.records_processed) == (5, 5, 10)
    expectations = Location.local(storage).read(spark, AUDIT_EXPECTATIONS).collect()
    assert [(e.expectation, e.passed_records, e.failed_records) for e in expectations] == [("id_even", 5, 5)]
    assert audit_local(spark, storage, targets=TARGETS).updates == []
