"""The audit derivation on a tiny pipeline run through the local runtime: figures equal what the tables
hold, a failed update is FAILED with its error, a running update is derived so far then replaced by its
final figures, one cut off by a later update is FAILED, rerunning adds nothing."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from inventory_bronze.audit import derive
from inventory_bronze.audit.store import (
    AUDIT_EXPECTATIONS,
    AUDIT_LOG,
    Location,
    audit_local,
    event_log_paths,
    local_events,
)
from inventory_devkit import project
from tests.audit.conftest import KEY, TARGETS


def _audit(spark: Any, storage: Path, table: str = AUDIT_LOG) -> Any:
    return Location.local(storage).read(spark, table)


def test_one_row_per_table_per_finished_update(spark: Any, tiny: dict[str, Any]) -> None:
    rows = _audit(spark, tiny["storage"]).collect()
    ids = [u.update_id for u in tiny["updates"]]
    assert sorted(r.update_id for r in rows) == sorted(ids)
    assert {r.target_table for r in rows} == {"bz_items"} and {r.source_table for r in rows} == {"test.items"}
    assert sorted(tiny["result"].updates) == sorted(ids)


def test_figures_equal_table_contents(spark: Any, tiny: dict[str, Any]) -> None:
    storage = tiny["storage"]
    last_ok = tiny["updates"][1]
    row = _audit(spark, storage).where(f"update_id = '{last_ok.update_id}'").first()
    tables = storage / KEY / "tables"
    bronze = spark.read.format("delta").load(str(tables / "bz_items"))
    quarantine = spark.read.format("delta").load(str(tables / "bz_items_quarantine"))
    assert row.status == "SUCCESS" and row.error_message is None
    assert row.rows_written == bronze.count()
    assert row.rows_quarantined == quarantine.count()
    assert row.rows_dropped == quarantine.count()  # the drop rule is the quarantine's rule
    assert row.records_processed == bronze.count() + quarantine.count()
    assert row.batch_id == last_ok.update_id
    assert {r.batch_id for r in bronze.select("batch_id").distinct().collect()} == {row.batch_id}
    assert row.duration_seconds >= 0 and row.update_duration_seconds >= row.duration_seconds
    assert row.processed_by == "audit_test" and row.flow_status == "COMPLETED"

    expectations = {
        r.expectation: r
        for r in _audit(spark, storage, AUDIT_EXPECTATIONS)
        .where(f"update_id = '{last_ok.update_id}'")
        .collect()
    }
    assert set(expectations) == {"id_small", "id_even_or_one", "id_below_limit"}
    ids = [r.id for r in spark.read.format("delta").load(str(tables / "bz_items")).collect()]
    ids += [r.id for r in quarantine.collect()]
    assert expectations["id_small"].failed_records == sum(i >= 8 for i in ids)
    assert expectations["id_even_or_one"].failed_records == quarantine.count()
    e = expectations["id_small"]
    assert e.pass_rate == pytest.approx(e.passed_records / (e.passed_records + e.failed_records))


def test_failed_update_is_failed_with_its_error(spark: Any, tiny: dict[str, Any]) -> None:
    failed = tiny["updates"][2]
    row = _audit(spark, tiny["storage"]).where(f"update_id = '{failed.update_id}'").first()
    assert row.status == "FAILED" and row.update_state == "FAILED" and row.flow_status == "FAILED"
    assert "id_below_limit" in row.error_message
    assert row.rows_written == 0


def test_every_bronze_row_joins_one_audit_row(spark: Any, tiny: dict[str, Any]) -> None:
    storage = tiny["storage"]
    bronze = spark.read.format("delta").load(str(storage / KEY / "tables" / "bz_items"))
    audit = _audit(spark, storage).where("target_table = 'bz_items'")
    matches = bronze.join(audit.select("batch_id", "audit_id"), "batch_id", "left").groupBy("id").count()
    assert bronze.count() > 0
    assert {r["count"] for r in matches.collect()} == {1}
    assert bronze.join(audit, "batch_id", "left_anti").count() == 0


def test_rerun_adds_nothing(spark: Any, tiny: dict[str, Any]) -> None:
    storage = tiny["storage"]
    before = {t: _audit(spark, storage, t).count() for t in (AUDIT_LOG, AUDIT_EXPECTATIONS)}
    again = audit_local(spark, storage, targets=TARGETS)
    assert again.updates == [] and again.audit_rows == 0
    assert before == {t: _audit(spark, storage, t).count() for t in (AUDIT_LOG, AUDIT_EXPECTATIONS)}


def _cut_terminal_event(spark: Any, tiny: dict[str, Any], storage: Path, update_id: str) -> list[Any]:
    """A copy of the tiny pipeline's storage whose event log lacks the update's final state; returns the
    removed events, to put back."""
    from delta.tables import DeltaTable

    shutil.copytree(tiny["storage"] / KEY, storage / KEY)
    events_path = str(event_log_paths(storage)[KEY])
    terminal = (
        "event_type = 'update_progress' AND get_json_object(details, '$.update_progress.state') IN "
        "('COMPLETED', 'FAILED')"
    )
    cut = f"origin.update_id = '{update_id}' AND {terminal}"
    held_back = spark.read.format("delta").load(events_path).where(cut).collect()
    assert held_back
    DeltaTable.forPath(spark, events_path).delete(cut)
    return held_back


def test_running_update_is_derived_so_far_then_replaced_by_its_final_figures(
    spark: Any, tiny: dict[str, Any], tmp_path: Path
) -> None:
    """An update with no final state yet (a continuous one runs for days) is derived with its figures so
    far, state RUNNING; once its final event is there, its rows are replaced (not added to) by the final
    ones; deriving again then changes nothing."""
    storage = tmp_path / "storage"
    last = tiny["updates"][2].update_id  # the failing update, the pipeline's latest
    held_back = _cut_terminal_event(spark, tiny, storage, last)

    first = audit_local(spark, storage, targets=TARGETS)
    assert last in first.updates and len(first.updates) == 3
    running = _audit(spark, storage).where(f"update_id = '{last}'").collect()
    assert [(r.update_state, r.update_ended is not None) for r in running] == [("RUNNING", True)]
    assert derive.updates(local_events(spark, storage)).where(f"update_id = '{last}'").count() == 0
    again = audit_local(spark, storage, targets=TARGETS)
    assert again.updates == [last]  # still running: derived again, replacing its rows

    events_path = str(event_log_paths(storage)[KEY])
    schema = spark.read.format("delta").load(events_path).schema
    spark.createDataFrame(held_back, schema).write.format("delta").mode("append").save(events_path)
    final = audit_local(spark, storage, targets=TARGETS)
    assert final.updates == [last]
    assert audit_local(spark, storage, targets=TARGETS).updates == []
    rows = _audit(spark, storage)
    assert rows.groupBy("update_id", "target_table").count().where("count > 1").count() == 0
    assert rows.count() == 3
    done = rows.where(f"update_id = '{last}'").collect()
    assert [(r.update_state, r.status) for r in done] == [("FAILED", "FAILED")]
    assert done == _audit(spark, tiny["storage"]).where(f"update_id = '{last}'").collect()


def test_update_cut_off_by_a_later_one_is_failed(spark: Any, tiny: dict[str, Any], tmp_path: Path) -> None:
    """An update without a final state that a later update of the pipeline followed (its process was
    killed) is FAILED, with an error saying so, not RUNNING forever."""
    storage = tmp_path / "storage"
    cut = tiny["updates"][1].update_id
    _cut_terminal_event(spark, tiny, storage, cut)
    audit_local(spark, storage, targets=TARGETS)
    (update,) = derive.updates(local_events(spark, storage)).where(f"update_id = '{cut}'").collect()
    assert update.state == "FAILED" and "ended without a final state" in update.update_error
    (row,) = _audit(spark, storage).where(f"update_id = '{cut}'").collect()
    (before,) = _audit(spark, tiny["storage"]).where(f"update_id = '{cut}'").collect()
    assert row.update_state == "FAILED"
    # its table's flow had completed before the update was cut off: what it wrote still counts
    assert (row.status, row.flow_status, row.rows_written) == ("SUCCESS", "COMPLETED", before.rows_written)
    assert row.rows_written > 0


REDACTION_PIPELINE = """
import dlt

# one table per configured PII column: a cast that fails on the column's (canary) value
for table, column, canary in {cases!r}:
    def failing(column=column, canary=canary):
        rows = spark.createDataFrame([(canary,)], f"`{{column}}` string")
        return rows.selectExpr(f"CAST(`{{column}}` AS BIGINT) AS v")

    dlt.table(name=f"bz_{{table}}_{{column.lower()}}")(failing)
"""


def test_row_values_in_errors_are_redacted_for_every_pii_column(spark: Any, tmp_path: Path) -> None:
    """A rule or cast failing on a PII value puts the value into Spark's error text: the audit and the
    report show the error without it."""
    from inventory_bronze import redaction
    from inventory_bronze.audit.report import build_html
    from localdlt import ConsoleProgress, UpdateOptions, run_update

    config = project.bronze_config()
    cases = [
        (table, column, f"canary-{table}-{column}@example.org")
        for table, tcfg in config.tables.items()
        for column in tcfg.pii
    ]
    assert len(cases) >= 8  # every PII column of conf/tables.yml
    source = tmp_path / "pipeline.py"
    source.write_text(REDACTION_PIPELINE.format(cases=cases))
    storage = tmp_path / "storage"
    console = io.StringIO()
    result = run_update(
        [source],
        storage / "pii_errors",
        options=UpdateOptions(),
        pipeline_name="pii_errors",
        spark=spark,
        progress=ConsoleProgress(out=console),
        redact=redaction.redact,  # as `run` and the demo pass it
    )
    assert not result.ok and any(c in str(result.error) for _, _, c in cases)  # the caller's error is whole
    # the local event log and the console: the same redaction
    events = spark.read.format("delta").load(str(storage / "pii_errors" / "system" / "events"))
    logged = [
        json.dumps(r.asDict(recursive=True), default=str) for r in events.where("error IS NOT NULL").collect()
    ]
    assert logged and all("<redacted>" in text for text in logged[:1])
    targets = {f"bz_{t}_{c.lower()}": f"tests.{t}" for t, c, _ in cases}
    audit_local(spark, storage, targets=targets)
    rows = _audit(spark, storage).where("status = 'FAILED'").collect()
    assert {r.target_table for r in rows} == set(targets)
    for row in rows:
        assert "CAST_INVALID_INPUT" in row.error_message and "<redacted>" in row.error_message
    html = build_html(spark, storage)
    for _, _, canary in cases:
        assert all(canary not in (r.error_message or "") for r in rows), canary
        assert canary not in html, canary
        assert not any(canary in text for text in logged), canary
        assert canary not in console.getvalue(), canary
