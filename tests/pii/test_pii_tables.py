"""Which key wrote which table: the key fingerprint (names a key, never shows it), recorded on the PII
tables, and an update under another key refused before it writes."""

from __future__ import annotations

import base64
import pickle
from pathlib import Path
from typing import Any

import pytest

from inventory_bronze import pii, pii_tables
from inventory_bronze.bronze import BronzeTable
from inventory_bronze.errors import PiiProtectionError
from inventory_bronze.secrets import SecretValue
from inventory_devkit import project

KEY = base64.b64encode(bytes(range(7, 39))).decode()
OTHER_KEY = base64.b64encode(bytes(range(100, 132))).decode()


def _keys(key: str) -> pii.PiiKeys:
    return pii.PiiKeys.from_secret(SecretValue(key, pii.DEFAULT_KEY_SECRET, "test"))


def test_fingerprint_tells_keys_apart_without_showing_them() -> None:
    keys, again, other = _keys(KEY), _keys(KEY), _keys(OTHER_KEY)
    assert keys.fingerprint == again.fingerprint != other.fingerprint
    assert len(keys.fingerprint) == pii.FINGERPRINT_HEX and int(keys.fingerprint, 16) >= 0
    raw = base64.b64decode(KEY)
    for secret in (raw, keys._encrypt, keys._nonce, keys._hash):
        assert keys.fingerprint not in (secret.hex(), base64.b64encode(secret).decode())
        assert keys.fingerprint not in secret.hex()
    assert pickle.loads(pickle.dumps(keys)).fingerprint == keys.fingerprint  # travels with the sub-keys
    assert keys.fingerprint in repr(keys)


def test_protected_datasets_follow_the_configuration() -> None:
    config = project.bronze_config()
    names = pii_tables.protected_datasets(config)
    for table, tcfg in config.tables.items():
        assert (f"bz_{table}" in names) == bool(tcfg.pii)
        assert (f"bz_{table}_quarantine" in names) == bool(tcfg.pii)
        assert (f"bz_{table}_changes" in names) == bool(tcfg.pii and tcfg.pattern.uses_capture)
    assert "bz_customers" in names and "bz_orders_changes" in names and "bz_products" not in names


def test_declared_properties_carry_the_current_key(spark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from inventory_bronze.secrets import env_var_for

    monkeypatch.setenv(env_var_for(pii.DEFAULT_KEY_SECRET), KEY)
    monkeypatch.delenv(pii.ENV_KEY_SECRET, raising=False)
    pii.reset_keys()
    try:
        assert (
            BronzeTable.of(spark, project.bronze_config(), "customers").table_properties()[
                pii_tables.PROPERTY
            ]
            == _keys(KEY).fingerprint
        )
        assert BronzeTable.of(spark, project.bronze_config(), "orders").pii_properties() == {
            pii_tables.PROPERTY: _keys(KEY).fingerprint
        }
        assert BronzeTable.of(spark, project.bronze_config(), "products").pii_properties() == {}
        assert (
            pii_tables.PROPERTY
            not in BronzeTable.of(spark, project.bronze_config(), "products").table_properties()
        )
    finally:
        pii.reset_keys()


def _table(spark: Any, path: Path, fingerprint: str | None) -> None:
    from delta.tables import DeltaTable

    builder = DeltaTable.create(spark).location(str(path)).addColumn("id", "BIGINT")
    if fingerprint is not None:
        builder = builder.property(pii_tables.PROPERTY, fingerprint)
    builder.execute()
    spark.range(3).write.format("delta").mode("append").save(str(path))


def _versions(storage: Path) -> dict[str, int]:
    return {p.name: len(list((p / "_delta_log").glob("*.json"))) for p in (storage / "tables").iterdir()}


def test_another_key_is_refused_before_anything_is_written(spark: Any, tmp_path: Path) -> None:
    config = project.bronze_config()
    storage = tmp_path / "inventory_bronze_cdc"
    written, other = _keys(KEY), _keys(OTHER_KEY)
    _table(spark, storage / "tables" / "bz_orders", written.fingerprint)
    _table(spark, storage / "tables" / "bz_orders_changes", written.fingerprint)
    _table(spark, storage / "tables" / "bz_orders_quarantine", None)  # written before fingerprints
    _table(spark, storage / "tables" / "bz_inventory", None)  # no PII: never checked nor recorded
    before = _versions(storage)

    with pytest.raises(PiiProtectionError) as refused:
        pii_tables.check_storage(spark, storage, config, other)
    message = str(refused.value)
    assert "bz_orders (" in message and "bz_orders_changes (" in message
    assert written.fingerprint in message and other.fingerprint in message
    assert "bz_orders_quarantine" not in message and "bz_inventory" not in message
    assert _versions(storage) == before  # nothing written, not even the missing record

    # the key that wrote them: accepted, and the table without a record gets the current key's
    assert pii_tables.check_storage(spark, storage, config, written) == ["bz_orders_quarantine"]
    for name in ("bz_orders", "bz_orders_changes", "bz_orders_quarantine"):
        assert pii_tables.recorded_fingerprint(storage / "tables" / name) == written.fingerprint
    assert pii_tables.recorded_fingerprint(storage / "tables" / "bz_inventory") is None
    assert pii_tables.check_storage(spark, storage, config, written) == []

    # a full refresh rewrites them: it records the new key instead of refusing it
    recorded = pii_tables.check_storage(spark, storage, config, other, full_refresh=True)
    assert sorted(recorded) == ["bz_orders", "bz_orders_changes", "bz_orders_quarantine"]
    assert pii_tables.recorded_fingerprint(storage / "tables" / "bz_orders") == other.fingerprint


def test_recorded_fingerprint_without_checksum_files(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "bz_customers"
    _table(spark, path, "00ff00ff00ff00ff")
    for crc in (path / "_delta_log").glob("*.crc"):
        crc.unlink()
    assert pii_tables.recorded_fingerprint(path, spark) == "00ff00ff00ff00ff"
    assert pii_tables.recorded_fingerprint(tmp_path / "missing") is None


def test_on_databricks_the_pipeline_refuses_to_define_tables_written_under_another_key(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No job runs before the continuous pipeline: its code checks, while it defines a table's datasets,
    that the tables published in its catalog.schema (here Spark's catalog) recorded the current key. Under
    another key the definition fails naming the tables and both fingerprints (the update fails before any
    flow runs); under the same key, or for a catalog the session does not know (a local run), it passes."""
    from inventory_bronze.secrets import env_var_for

    schema = "pii_published_test"
    spark.sql(f"DROP SCHEMA IF EXISTS spark_catalog.{schema} CASCADE")
    spark.sql(f"CREATE SCHEMA spark_catalog.{schema} LOCATION '{tmp_path / 'published'}'")
    written = _keys(KEY).fingerprint
    for name in ("bz_customers", "bz_customers_quarantine"):
        spark.sql(
            f"CREATE TABLE spark_catalog.{schema}.{name} (id INT) USING DELTA "
            f"TBLPROPERTIES ('{pii_tables.PROPERTY}' = '{written}')"
        )
    monkeypatch.delenv(pii.ENV_KEY_SECRET, raising=False)
    try:
        spark.conf.set(pii_tables.PUBLISHED_CONF_KEY, f"spark_catalog.{schema}")
        monkeypatch.setenv(env_var_for(pii.DEFAULT_KEY_SECRET), OTHER_KEY)
        pii.reset_keys()
        with pytest.raises(PiiProtectionError) as refused:
            BronzeTable.of(spark, project.bronze_config(), "customers").pii_properties()
        message = str(refused.value)
        assert "bz_customers (" in message and "bz_customers_quarantine (" in message
        assert written in message and _keys(OTHER_KEY).fingerprint in message
        assert BronzeTable.of(
            spark, project.bronze_config(), "suppliers"
        ).pii_properties()  # its tables are not published: nothing to refuse

        monkeypatch.setenv(env_var_for(pii.DEFAULT_KEY_SECRET), KEY)
        pii.reset_keys()
        assert BronzeTable.of(spark, project.bronze_config(), "customers").pii_properties() == {
            pii_tables.PROPERTY: written
        }

        spark.conf.set(pii_tables.PUBLISHED_CONF_KEY, "workspace.inventory_bronze")  # no such catalog here
        monkeypatch.setenv(env_var_for(pii.DEFAULT_KEY_SECRET), OTHER_KEY)
        pii.reset_keys()
        assert BronzeTable.of(spark, project.bronze_config(), "customers").pii_properties() == {
            pii_tables.PROPERTY: _keys(OTHER_KEY).fingerprint
        }
    finally:
        spark.conf.unset(pii_tables.PUBLISHED_CONF_KEY)
        spark.sql(f"DROP SCHEMA IF EXISTS spark_catalog.{schema} CASCADE")
        pii.reset_keys()
