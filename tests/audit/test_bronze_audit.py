"""The audit of the real bronze pipelines on the real local PostgreSQL, after a demo-sized run with dirty
data (an update of both pipelines on a seed with rule-breaking rows, reconciled as `run`/`demo` do; more
updates cost minutes each on a two-core machine, the tiny pipeline of test_derive covers several):
the audit's numbers equal what the bronze, change and quarantine tables hold; every bronze row's
batch_id joins exactly one audit row; rerunning the derivation adds nothing; the dashboard's queries run
and the HTML report renders on these tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import functions as F

from inventory_bronze import pii
from inventory_bronze.audit.store import (
    AUDIT_EXPECTATIONS,
    AUDIT_LOG,
    DERIVED_FROM,
    LOCAL_FOLDER,
    RECONCILIATION,
    Location,
    audit_local,
    default_targets,
)
from inventory_bronze.config import target_name
from inventory_bronze.reconcile import table_paths
from inventory_bronze.source.capture_slot import ensure_capture
from inventory_devkit import project
from tests.audit.test_views import ARTIFACTS, check_dashboard_queries, check_report, render_in_chromium


def _run_and_reconcile(spark: Any, storage: Path, conn: Any) -> dict[str, Any]:
    from inventory_bronze.reconcile import reconcile
    from inventory_devkit.local_run import run_pipelines

    results = run_pipelines(storage=storage, quiet=True)
    for key, result in results.items():
        assert result.ok, f"{key}: {result.error}"
    rows = reconcile(spark, storage, conn, project.bronze_config())
    audit_local(
        spark, storage, default_targets(project.bronze_config()), reconciliation=rows
    )  # what `run` and `demo` do after reconciling
    return {"results": results, "reconciliation": rows}


@pytest.fixture(scope="module")
def audited(spark: Any, pg_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Seeded source with dirty rows -> an update of both pipelines, reconciled and audited."""
    from inventory_bronze.secrets import env_var_for, source_connection
    from inventory_bronze.source.capture_connection import open_connection
    from inventory_bronze.source.capture_slot import CaptureNames, drop_capture
    from inventory_devkit.postgres.ddl import create_schema
    from inventory_devkit.postgres.load import seed_database

    def drop_slots() -> None:
        with open_connection(source_connection()) as conn:
            for qualified in project.bronze_config().capture_tables:
                drop_capture(conn, CaptureNames.for_table(qualified))

    storage = tmp_path_factory.mktemp("audit_bronze") / "pipelines"
    with pytest.MonkeyPatch.context() as mp:
        drop_slots()
        create_schema(pg_server, drop=True)
        seed_database(pg_server, scale=0.002, seed=23, dirty_rate=0.05, quiet=True)
        mp.setenv(env_var_for(pii.DEFAULT_KEY_SECRET), pii.generate_key())
        pii.reset_keys()
        ensure_capture(project.bronze_config().capture_tables)
        try:
            with pg_server.connect(autocommit=True) as conn:
                first = _run_and_reconcile(spark, storage, conn)
            yield {"storage": storage, "runs": [first]}
        finally:
            drop_slots()
            pii.reset_keys()


def _read(spark: Any, storage: Path, table: str) -> Any:
    return Location.local(storage).read(spark, table)


def _delta(spark: Any, path: Path) -> Any:
    return spark.read.format("delta").load(str(path))


def test_one_row_per_table_per_update_and_reconciled(spark: Any, audited: dict[str, Any]) -> None:
    storage = audited["storage"]
    audit = _read(spark, storage, AUDIT_LOG).collect()
    targets = default_targets(project.bronze_config())
    updates = {r.update_id: key for run in audited["runs"] for key, r in run["results"].items()}
    assert {(r.update_id, r.target_table) for r in audit} == {
        (u, t) for u, key in updates.items() for t in targets if (storage / key / "tables" / t).is_dir()
    }
    assert len(audit) == len(audited["runs"]) * len(targets)
    assert all(r.status == "SUCCESS" and r.error_message is None for r in audit)
    assert all(r.source_table == targets[r.target_table] for r in audit)
    # each update carries the reconciliation made right after it
    for run in audited["runs"]:
        by_table = {target_name(x.table): x for x in run["reconciliation"]}
        for result in run["results"].values():
            for r in (r for r in audit if r.update_id == result.update_id):
                rec = by_table[r.target_table]
                assert r.reconciliation_status == rec.status == "MATCH"
                assert (r.reconciled_source_rows, r.reconciled_bronze_rows, r.reconciled_missing) == (
                    rec.source_rows,
                    rec.bronze_rows,
                    rec.missing,
                )
    assert _read(spark, storage, RECONCILIATION).count() == len(audited["runs"]) * len(targets)


def test_audit_numbers_equal_table_contents(spark: Any, audited: dict[str, Any]) -> None:
    storage = audited["storage"]
    paths = table_paths(storage)
    audit = _read(spark, storage, AUDIT_LOG)
    expectations = _read(spark, storage, AUDIT_EXPECTATIONS)
    conf = project.bronze_config()
    checked = 0
    for table in conf.table_names:
        target = target_name(table)
        tcfg = conf.table(table)
        quarantine = _delta(spark, paths[f"{target}_quarantine"])
        rows = audit.where(F.col("target_table") == target).orderBy("update_ended").collect()
        exp = expectations.where(F.col("target_table") == target)
        if tcfg.pattern.uses_capture:
            # append-only: quarantine and the change archive hold what every update added
            changes = _delta(spark, paths[f"{target}_changes"])
            assert sum(r.rows_quarantined for r in rows) == quarantine.count(), target
            assert sum(r.rows_dropped for r in rows) == quarantine.count(), target
            judged = exp.groupBy("expectation").agg(
                F.sum("failed_records").alias("failed"),
                F.sum(F.col("passed_records") + F.col("failed_records")).alias("all"),
            )
            for e in judged.collect():
                held = changes.where(F.array_contains("dq_failed_rules", e.expectation)).count()
                assert e.failed == held, f"{target}.{e.expectation}"
                assert e.all == changes.count(), f"{target}.{e.expectation}"
        else:
            # snapshot: each update judges the whole source; quarantine is recomputed
            last = rows[-1]
            current = _delta(spark, paths[target])
            if "__END_AT" in current.columns:
                current = current.where("__END_AT IS NULL")
            assert last.rows_quarantined == quarantine.count() == last.rows_dropped, target
            assert (
                last.records_processed == current.count() + quarantine.count() == last.reconciled_source_rows
            )
            for e in exp.where(F.col("update_id") == last.update_id).collect():
                failing = F.array_contains("dq_failed_rules", e.expectation)
                held = current.where(failing).count() + quarantine.where(failing).count()
                assert e.failed_records == held, f"{target}.{e.expectation}"
                assert e.passed_records + e.failed_records == last.records_processed
        checked += exp.count() > 0
    assert checked == len(conf.table_names)  # every table has rules, every table was checked


def test_every_bronze_row_batch_id_joins_one_audit_row(spark: Any, audited: dict[str, Any]) -> None:
    storage = audited["storage"]
    paths = table_paths(storage)
    audit = _read(spark, storage, AUDIT_LOG).select("target_table", "batch_id", "audit_id")
    for target in default_targets(project.bronze_config()):
        rows = (
            _delta(spark, paths[target]).select("batch_id").withColumn("row", F.monotonically_increasing_id())
        )
        joined = rows.join(audit.where(F.col("target_table") == target), "batch_id", "left")
        counts = joined.groupBy("row").agg(F.count("audit_id").alias("n"))
        assert counts.where("n <> 1").count() == 0, target
        assert rows.count() > 0


def test_rerun_adds_nothing(spark: Any, audited: dict[str, Any]) -> None:
    storage = audited["storage"]
    tables = (AUDIT_LOG, AUDIT_EXPECTATIONS)
    before = {t: _read(spark, storage, t).orderBy("audit_id").collect() for t in tables}
    again = audit_local(
        spark, storage, default_targets(project.bronze_config())
    )  # no event log or audit table moved: nothing is derived
    assert again.updates == []
    assert before == {t: _read(spark, storage, t).orderBy("audit_id").collect() for t in tables}
    (storage / LOCAL_FOLDER / DERIVED_FROM).unlink()  # forgotten: derived again, and still adds nothing
    again = audit_local(spark, storage, default_targets(project.bronze_config()))
    assert again.updates == []
    assert before == {t: _read(spark, storage, t).orderBy("audit_id").collect() for t in tables}
    assert (storage / LOCAL_FOLDER / DERIVED_FROM).exists()
    # a sample of one run's audit, kept for the record
    sample = _read(spark, storage, AUDIT_LOG).orderBy("update_ended", "target_table")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "audit-rows.txt").write_text(
        sample.select(
            "audit_id",
            "source_table",
            "target_table",
            "batch_id",
            "ingestion_timestamp",
            "records_processed",
            "status",
            "error_message",
            "processed_by",
            "duration_seconds",
            "rows_written",
            "rows_upserted",
            "rows_deleted",
            "rows_dropped",
            "rows_quarantined",
            "reconciliation_status",
        )._jdf.showString(100, 0, False)  # fmt: skip
    )


def test_dashboard_and_report_on_the_bronze_audit(
    spark: Any, audited: dict[str, Any], tmp_path: Path
) -> None:
    storage = audited["storage"]
    columns = check_dashboard_queries(spark, storage)
    assert "pass_rate_pct" in columns["pass_rate"]
    from inventory_bronze.cli import main

    out = tmp_path / "report.html"
    assert main(["report", "--storage", str(storage), "--out", str(out)]) == 0
    shot = ARTIFACTS / "audit-report.png"
    dom = render_in_chromium(out, shot, tmp_path)
    check_report(out, dom, shot)
    for target in default_targets(project.bronze_config()):
        assert target in dom


def test_the_job_task_reconciles_the_published_tables_as_run_does(
    spark: Any, audited: dict[str, Any], pg_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hourly job's `reconcile` task on Databricks: bronze, quarantine and event log tables addressed
    as catalog.schema.name (here Spark's catalog, tables registered over this run's folders), the source
    read through the secrets chain. Same figures as the local reconciliation, recorded in
    catalog.schema.bz_reconciliation with each pipeline's update; a source row bronze lacks is a MISMATCH
    (exit 1), unless it is gone when the settle wait is over (a change in flight)."""
    from psycopg import sql

    from inventory_bronze.audit.store import event_log_paths
    from inventory_bronze.cli import main
    from inventory_bronze.reconcile import reconcile_tables
    from inventory_bronze.source.schema import table as declared

    storage, schema = audited["storage"], "reconcile_catalog_test"
    spark.sql(f"DROP SCHEMA IF EXISTS spark_catalog.{schema} CASCADE")
    spark.sql(f"CREATE SCHEMA spark_catalog.{schema} LOCATION '{tmp_path / 'catalog'}'")
    published = {**table_paths(storage)}
    published.update({f"event_log_{key}": path for key, path in event_log_paths(storage).items()})
    for name, path in published.items():
        spark.sql(f"CREATE TABLE spark_catalog.{schema}.{name} USING DELTA LOCATION '{path}'")
    logs = [a for key in event_log_paths(storage) for a in ("--event-log", f"event_log_{key}")]
    args = ["reconcile", "--catalog", "spark_catalog", "--schema", schema, *logs]
    recorded = f"spark_catalog.{schema}.bz_reconciliation"
    try:
        assert main(args) == 0
        [run] = audited["runs"]
        figures = (
            "status",
            "source_rows",
            "bronze_rows",
            "quarantined_only",
            "missing",
            "extra",
            "duplicates",
        )
        local = {target_name(r.table): tuple(getattr(r, f) for f in figures) for r in run["reconciliation"]}
        rows = spark.read.table(recorded).collect()
        assert {r.target_table: tuple(r[f] for f in figures) for r in rows} == local
        assert {r.update_id for r in rows} == {r.update_id for r in run["results"].values()}

        decl = declared("warehouses")
        pk, columns = decl.primary_key[0], [c.name for c in decl.columns]
        new_key = 900_000_123
        copy = sql.SQL(
            "INSERT INTO {t} ({cols}) OVERRIDING SYSTEM VALUE SELECT {sel} FROM {t} ORDER BY {k} LIMIT 1"
        ).format(
            t=decl.ident(),
            cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
            sel=sql.SQL(", ").join(sql.Literal(new_key) if c == pk else sql.Identifier(c) for c in columns),
            k=sql.Identifier(pk),
        )
        remove = sql.SQL("DELETE FROM {} WHERE {} = %s").format(decl.ident(), sql.Identifier(pk))
        with pg_server.connect(autocommit=True) as conn:
            conn.execute(copy)
            try:
                capsys.readouterr()
                assert main(args) == 1
                assert "MISMATCH in warehouses" in capsys.readouterr().err
                latest = spark.read.table(recorded).where("target_table = 'bz_warehouses'")
                assert latest.orderBy(latest.reconciled_at.desc()).first().missing == 1
                in_catalog = Location(catalog="spark_catalog", schema=schema)
                read = lambda name: in_catalog.read(spark, name)  # noqa: E731
                settled = reconcile_tables(
                    spark,
                    read,
                    conn,
                    project.bronze_config(),
                    ["warehouses"],
                    settle=lambda: conn.execute(remove, [new_key]),
                )
                assert [(r.missing, r.status) for r in settled] == [(0, "MATCH")]
            finally:
                conn.execute(remove, [new_key])
    finally:
        spark.sql(f"DROP SCHEMA IF EXISTS spark_catalog.{schema} CASCADE")
