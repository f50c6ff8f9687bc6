"""The bronze pipelines end to end on the real local PostgreSQL: every table, every pattern, quarantine,
PII never in plaintext, deletes reaching bronze, reruns adding nothing twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inventory_bronze import pii, pii_tables
from inventory_bronze.config import target_name
from inventory_bronze.errors import PiiProtectionError
from inventory_devkit import project

TABLES = list(project.bronze_config().tables)  # the ten tables conf/tables.yml declares


@pytest.fixture
def bronze_source(pg_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A freshly seeded source with dirty rows and a PII key; no replication slot (as on a fresh server)."""
    from inventory_bronze.secrets import env_var_for, source_connection
    from inventory_bronze.source.capture_connection import open_connection
    from inventory_bronze.source.capture_slot import CaptureNames, drop_capture
    from inventory_devkit.postgres.ddl import check_database, create_schema
    from inventory_devkit.postgres.load import seed_database

    with open_connection(source_connection()) as conn:
        for qualified in project.bronze_config().capture_tables:
            drop_capture(conn, CaptureNames.for_table(qualified))
    create_schema(pg_server, drop=True)
    seed_database(pg_server, scale=0.002, seed=11, dirty_rate=0.05, quiet=True)
    monkeypatch.setenv(env_var_for(pii.DEFAULT_KEY_SECRET), pii.generate_key())
    pii.reset_keys()
    yield pg_server  # no capture set up: the first update sets up what it reads
    with open_connection(source_connection()) as conn:
        for qualified in project.bronze_config().capture_tables:
            drop_capture(conn, CaptureNames.for_table(qualified))
    with pg_server.connect() as conn:
        drifted = check_database(conn)
    if drifted:  # the test changed the source's schema: give later tests the declared one back
        create_schema(pg_server, drop=True)
        seed_database(pg_server, scale=0.002, seed=11, dirty_rate=0.05, quiet=True)
    pii.reset_keys()


# the drift the end-to-end test makes while changes flow: per table, a column added, one widened, one dropped
ADDED_COLUMN = "Shelf"
DRIFT = {
    "inventory": (ADDED_COLUMN, "Quantity_Reserved", "Reorder_Point"),  # captured (AUTO CDC, SCD 1)
    "warehouses": ("Region", "Capacity", "Opened_On"),  # snapshot (SCD 2), PII: the added column encrypted
}
BIG = 5_000_000_000  # a value only the widened (bigint) column holds


def _run(storage: Path) -> dict[str, Any]:
    from inventory_devkit.local_run import run_pipelines

    results = run_pipelines(storage=storage, quiet=True)
    for key, result in results.items():
        assert result.ok, f"{key}: {result.error}"
    return results


def _tables(spark: Any, storage: Path) -> dict[str, Path]:
    return {p.name: p for p in storage.glob("*/tables/*") if (p / "_delta_log").is_dir()}


def _current(spark: Any, path: Path) -> Any:
    df = spark.read.format("delta").load(str(path))
    return df.where("__END_AT IS NULL") if "__END_AT" in df.columns else df


def _source_keys(conn: Any, table: str) -> set[int]:
    from inventory_bronze.source.schema import table as declared

    key = declared(table).primary_key[0]
    return {r[0] for r in conn.execute(f'SELECT "{key}" FROM tests.{table}').fetchall()}


def _keys(df: Any, table: str) -> list[int]:
    from inventory_bronze.source.schema import table as declared

    key = declared(table).primary_key[0]
    return [r[0] for r in df.select(key).collect()]


def _check_bronze_equals_source(spark: Any, storage: Path, conn: Any) -> None:
    tables = _tables(spark, storage)
    for table in TABLES:
        bz = _keys(_current(spark, tables[target_name(table)]), table)
        assert len(bz) == len(set(bz)), f"{table}: duplicate keys in bronze"
        quarantined = set(
            _keys(spark.read.format("delta").load(str(tables[f"bz_{table}_quarantine"])), table)
        )
        source = _source_keys(conn, table)
        # nothing lost: every source row is in bronze or in quarantine; nothing invented
        assert source <= set(bz) | quarantined, f"{table}: {sorted(source - set(bz) - quarantined)[:5]} lost"
        assert set(bz) <= source, f"{table}: bronze holds keys the source no longer has"


def test_bronze_pipelines_end_to_end(
    spark: Any, bronze_source: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = tmp_path / "pipelines"
    first = _run(storage)
    tables = _tables(spark, storage)
    assert {target_name(t) for t in TABLES} <= set(tables)

    # the update set up the capture it reads (a slot per captured table), as `run` on a fresh server does
    from inventory_bronze.source.capture_slot import CaptureNames, slot_state

    with bronze_source.connect(autocommit=True) as conn:
        for qualified in project.bronze_config().capture_tables:
            assert slot_state(conn, CaptureNames.for_table(qualified).slot).exists, qualified

    # every dataset holding PII records the key that wrote it (its fingerprint, never the key)
    protected = pii_tables.protected_datasets(project.bronze_config())
    assert {"bz_customers_quarantine", "bz_orders_changes"} <= set(protected) <= set(tables)
    for name in protected:
        assert pii_tables.recorded_fingerprint(tables[name]) == pii.load_keys().fingerprint, name

    with bronze_source.connect(autocommit=True) as conn:
        _check_bronze_equals_source(spark, storage, conn)

        # metadata columns on every bronze table; batch_id is the update that wrote the row
        update_ids = {r.update_id for r in first.values()}
        for table in TABLES:
            df = _current(spark, tables[target_name(table)])
            for column in ("load_timestamp", "update_timestamp", "source_system", "record_status"):
                assert column in df.columns, f"{table} lacks {column}"
            stats = df.selectExpr(
                "min(data_quality_score) lo", "max(data_quality_score) hi", "collect_set(source_system) s"
            ).first()
            assert 0 <= stats.lo <= stats.hi <= 100 and stats.s == ["PostgreSQL_DE"]
            assert {r.batch_id for r in df.select("batch_id").distinct().collect()} <= update_ids

        # quarantine: dirty rows land there with the names of the rules they failed
        quarantine = spark.read.format("delta").load(str(tables["bz_customers_quarantine"]))
        rules = {r.name for r in project.bronze_config().table("customers").rules}
        failed = [set(r.dq_failed_rules) for r in quarantine.select("dq_failed_rules").collect()]
        assert failed and all(f and f <= rules for f in failed)
        bad_email = conn.execute(
            "SELECT count(*) FROM tests.customers "
            'WHERE "Email" IS NULL OR "Email" !~ \'^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$\''
        ).fetchone()[0]
        assert sum("email_valid" in f for f in failed) == bad_email

        # PII: never in plaintext in any Delta file; the documented decrypt path gives it back
        key, name, email = conn.execute(
            'SELECT "Customer_ID", "Customer_Name", "Email" FROM tests.customers '
            "WHERE \"Customer_Name\" <> '' AND \"Email\" ~ '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$' "
            'ORDER BY "Customer_ID" LIMIT 1'
        ).fetchone()
        for path in storage.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert name.encode() not in data and email.encode() not in data, f"plaintext PII in {path}"
        row = (
            spark.read.format("delta").load(str(tables["bz_customers"])).where(f"Customer_ID = {key}").first()
        )
        assert pii.decrypt_value("customers", "Customer_Name", row.Customer_Name) == name

        # a rerun with no change in the source adds nothing
        counts = {t: _current(spark, tables[target_name(t)]).count() for t in TABLES}
        _run(storage)
        assert counts == {t: _current(spark, tables[target_name(t)]).count() for t in TABLES}

        # changes (inserts, updates, deletes) reach bronze on the next update, deletes included
        from inventory_devkit.postgres.workload import run_changes

        # ... and so does a change of the source's schema, in a captured and in a snapshot table: a column
        # added (its values taken), one widened (Delta's type widening), one dropped (kept, NULL from then on)
        for table, (added, widened, dropped) in DRIFT.items():
            conn.execute(f'ALTER TABLE tests.{table} DROP COLUMN "{dropped}"')
            conn.execute(f'ALTER TABLE tests.{table} ALTER COLUMN "{widened}" TYPE bigint')
            conn.execute(f'ALTER TABLE tests.{table} ADD COLUMN "{added}" text')
        shelved = conn.execute(
            f'UPDATE tests.inventory SET "{ADDED_COLUMN}" = \'S-\' || "Inventory_ID" '
            'WHERE "Inventory_ID" IN (SELECT "Inventory_ID" FROM tests.inventory ORDER BY 1 LIMIT 3) '
            'RETURNING "Inventory_ID"'
        ).fetchall()
        big_inventory = shelved[0][0]
        conn.execute(
            f'UPDATE tests.inventory SET "Quantity_Reserved" = {BIG} WHERE "Inventory_ID" = {big_inventory}'
        )
        conn.execute("UPDATE tests.warehouses SET \"Region\" = 'north'")
        big_warehouse = conn.execute(
            f'UPDATE tests.warehouses SET "Capacity" = {BIG} WHERE "Warehouse_ID" = '
            '(SELECT min("Warehouse_ID") FROM tests.warehouses WHERE "Capacity" > 0) RETURNING "Warehouse_ID"'
        ).fetchone()[0]
        run_changes(bronze_source, count=300, seed=5, quiet=True)
        results = _run(storage)
        _check_bronze_equals_source(spark, storage, conn)
        inventory = _current(spark, tables["bz_inventory"])
        current = dict(
            conn.execute(
                f'SELECT "Inventory_ID", "{ADDED_COLUMN}" FROM tests.inventory WHERE "{ADDED_COLUMN}" IS NOT NULL'
            ).fetchall()
        )
        assert current and {k for (k,) in shelved} >= set(current)
        held = inventory.where(f"`{ADDED_COLUMN}` IS NOT NULL").select("Inventory_ID", ADDED_COLUMN).collect()
        assert dict((r[0], r[1]) for r in held) == current
        assert inventory.schema["Quantity_Reserved"].dataType.simpleString() == "bigint"
        reserved = conn.execute(
            'SELECT "Quantity_Reserved" FROM tests.inventory WHERE "Inventory_ID" = %s', (big_inventory,)
        ).fetchone()[0]
        assert reserved >= BIG  # the workload may have reserved more since
        assert inventory.where(f"Inventory_ID = {big_inventory}").first().Quantity_Reserved == reserved
        assert "Reorder_Point" in inventory.columns  # kept; the changes captured since the drop hold NULL
        archive = spark.read.format("delta").load(str(tables["bz_inventory_changes"]))
        since = archive.where(f"`{ADDED_COLUMN}` IS NOT NULL")
        assert since.count() >= len(current) and since.where("Reorder_Point IS NOT NULL").count() == 0
        warehouses = _current(spark, tables["bz_warehouses"])
        assert warehouses.schema["Capacity"].dataType.simpleString() == "bigint"
        assert warehouses.where(f"Warehouse_ID = {big_warehouse}").first().Capacity == BIG
        regions = {pii.decrypt_value("warehouses", "Region", r.Region) for r in warehouses.collect()}
        assert regions == {"north"}  # encrypted in bronze: warehouses holds PII
        assert warehouses.where("Opened_On IS NOT NULL").count() == 0  # the versions written since the drop

        # each table's schema change: one WARN event of the update that took it, the audit, the report
        def schema_events() -> list[tuple[str, str, list[str], list[str], list[str]]]:
            found = []
            for pipeline in ("inventory_bronze_batch", "inventory_bronze_cdc"):
                events = spark.read.format("delta").load(str(storage / pipeline / "system" / "events"))
                found += [
                    (r.level, r.update_id, r.dataset_name, json.loads(r.details)["schema_change"])
                    for r in events.where("event_type = 'schema_change'")
                    .select("level", "origin.update_id", "origin.dataset_name", "details")
                    .collect()
                ]
            return sorted(found, key=repr)

        cdc_update, batch_update = (
            results[p].update_id for p in ("inventory_bronze_cdc", "inventory_bronze_batch")
        )
        shelf, reserved_wider = [f"`{ADDED_COLUMN}` string"], ["`Quantity_Reserved` int -> bigint"]
        expected = {  # the archive stops writing the dropped column; bz_inventory reads it from the archive
            "bz_inventory_changes": (cdc_update, shelf, reserved_wider, ["Reorder_Point"]),
            "bz_inventory": (cdc_update, shelf, reserved_wider, []),
            "bz_warehouses": (batch_update, ["`Region` string"], ["`Capacity` int -> bigint"], ["Opened_On"]),
        }
        events = schema_events()
        for target, (update, added, widened, removed) in expected.items():
            assert [
                (level, d["added_columns"], d["widened_columns"], d["removed_columns"])
                for level, u, ds, d in events
                if ds == target and u == update
            ] == [("WARN", added, widened, removed)], target
        from inventory_bronze.audit.report import build_html
        from inventory_bronze.audit.store import SCHEMA_CHANGES, Location, audit_local, default_targets

        for _ in range(2):  # a rerun of the audit adds nothing
            audit_local(spark, storage, default_targets(project.bronze_config()))
            changes = Location.local(storage).read(spark, SCHEMA_CHANGES).collect()
            assert sorted(
                (r.target_table, r.source_table, r.update_id, r.change, list(r.columns)) for r in changes
            ) == sorted(
                (target, f"tests.{target[3:].removesuffix('_changes')}", update, change, columns)
                for target, (update, *kinds) in expected.items()
                for change, columns in zip(
                    ("columns_added", "columns_widened", "columns_removed"), kinds, strict=True
                )
                if columns  # a kind of change with no column gets no row
            )
        page = build_html(spark, storage)
        assert "Source schema changes" in page and f"`{ADDED_COLUMN}` string" in page
        assert "`Capacity` int -&gt; bigint" in page and "Opened_On" in page
        # the next update finds nothing new in the schemas: no event repeats a change
        _run(storage)
        assert schema_events() == events

    # another PII key: refused before anything is written, naming the tables and both fingerprints
    from inventory_bronze.secrets import env_var_for
    from inventory_devkit.local_run import run_pipelines

    written = pii.load_keys().fingerprint
    logs = {p: sorted(p.glob("_delta_log/*.json")) for p in storage.glob("*/tables/*")}
    monkeypatch.setenv(env_var_for(pii.DEFAULT_KEY_SECRET), pii.generate_key())
    pii.reset_keys()
    with pytest.raises(PiiProtectionError) as refused:
        run_pipelines(storage=storage, quiet=True)
    assert written in str(refused.value) and pii.load_keys().fingerprint in str(refused.value)
    assert "bz_customers (" in str(refused.value)
    assert logs == {p: sorted(p.glob("_delta_log/*.json")) for p in storage.glob("*/tables/*")}
