"""Rotating the PII key over a local storage or a catalog schema: every PII dataset re-encrypted and re-hashed
in place, the new key recorded, streams reading a change archive undisturbed, resumable, and refused under a
third key."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from inventory_bronze import pii, pii_rotation
from inventory_bronze.errors import PiiProtectionError
from inventory_bronze.pii_tables import PROPERTY, recorded_fingerprint, table_configuration
from inventory_bronze.secrets import SecretValue
from inventory_devkit import project

OLD = pii.PiiKeys.from_secret(SecretValue(base64.b64encode(bytes(range(1, 33))).decode(), "old", "test"))
NEW = pii.PiiKeys.from_secret(SecretValue(base64.b64encode(bytes(range(50, 82))).decode(), "new", "test"))
THIRD = pii.PiiKeys.from_secret(SecretValue(base64.b64encode(bytes(range(90, 122))).decode(), "x", "test"))
KEYS = {"customers": "Customer_ID", "orders": "Order_ID"}


def _values(table: str, key: int) -> dict[str, str | None]:
    """A row's plaintext for every PII column the configuration declares (None for every odd key)."""
    return {c: None if key % 2 else f"{c} of {key}" for c in project.bronze_config().table(table).pii}


def _create(spark: Any, path: Path, df: Any, keys: pii.PiiKeys, append_only: bool = False) -> None:
    from delta.tables import DeltaTable

    builder = DeltaTable.create(spark).location(str(path)).addColumns(df.schema)
    builder = builder.property(PROPERTY, keys.fingerprint)
    if append_only:
        builder = builder.property("delta.appendOnly", "true")
    builder.execute()
    df.write.format("delta").mode("append").save(str(path))


def _protected(spark: Any, table: str, keys: pii.PiiKeys, ids: list[int]) -> Any:
    columns = list(project.bronze_config().table(table).pii)
    rows = [(i, *_values(table, i).values()) for i in ids]
    schema = ", ".join([f"{KEYS[table]} int", *(f"{c} string" for c in columns)])
    return pii.protect(
        spark.createDataFrame(rows, schema), table, project.bronze_config().table(table), keys=keys
    )


def _rotate(spark: Any, storage: Path, old: pii.PiiKeys, new: pii.PiiKeys) -> list[Any]:
    config = project.bronze_config()
    return pii_rotation.rotate(spark, pii_rotation.local_datasets(storage, config), config, old, new)


def _commits(path: Path) -> int:
    return len(list((path / "_delta_log").glob("*.json")))


@pytest.fixture
def storage(spark: Any, tmp_path: Path) -> Path:
    root = tmp_path / "pipelines"
    customers = root / "inventory_bronze_batch" / "tables" / "bz_customers"
    _create(spark, customers, _protected(spark, "customers", OLD, [1, 2]), OLD)
    changes = root / "inventory_bronze_cdc" / "tables" / "bz_orders_changes"
    _create(spark, changes, _protected(spark, "orders", OLD, [10, 11, 12]), OLD, append_only=True)
    return root


def _plain(spark: Any, path: Path, table: str, keys: pii.PiiKeys) -> dict[int, dict[str, Any]]:
    """Per key, the plaintext of every PII column, decrypted with `keys`."""
    df = spark.read.format("delta").load(str(path))
    columns = list(project.bronze_config().table(table).pii)
    for column in columns:
        df = pii.decrypt_column(df, table, column, keys=keys)
    return {r[0]: dict(zip(columns, r[1:], strict=True)) for r in df.select(KEYS[table], *columns).collect()}


def test_rotation_reencrypts_rehashes_and_records_the_new_key(
    spark: Any, storage: Path, tmp_path: Path
) -> None:
    config = project.bronze_config()
    customers = storage / "inventory_bronze_batch" / "tables" / "bz_customers"
    changes = storage / "inventory_bronze_cdc" / "tables" / "bz_orders_changes"
    columns = spark.read.format("delta").load(str(customers)).columns
    # a stream reads the change archive (as its quarantine and AUTO CDC flows do) before the rotation
    sink, checkpoint = tmp_path / "sink", tmp_path / "checkpoint"

    def drain() -> int:
        stream = spark.readStream.format("delta").load(str(changes))
        query = stream.writeStream.format("delta").option("checkpointLocation", str(checkpoint))
        query.trigger(availableNow=True).start(str(sink)).awaitTermination()
        return spark.read.format("delta").load(str(sink)).count()

    assert drain() == 3

    lines: list[str] = []
    done = pii_rotation.rotate(
        spark, pii_rotation.local_datasets(storage, config), config, OLD, NEW, progress=lines.append
    )
    assert {(r.dataset, r.rows, r.action) for r in done} == {
        ("bz_customers", 2, "rewritten"),
        ("bz_orders_changes", 3, "rewritten"),
    }
    assert len(lines) == 2 and "bz_customers: 2 rows re-encrypted" in lines[0]
    for path in (customers, changes):
        assert recorded_fingerprint(path) == NEW.fingerprint
    # the same plaintext under the new key, nothing under the old one; hashes re-derived; layout kept
    assert _plain(spark, customers, "customers", NEW) == {i: _values("customers", i) for i in (1, 2)}
    assert _plain(spark, changes, "orders", NEW) == {i: _values("orders", i) for i in (10, 11, 12)}
    with pytest.raises(Exception, match="does not decrypt"):
        _plain(spark, customers, "customers", OLD)
    stored = spark.read.format("delta").load(str(customers))
    assert stored.columns == columns
    row = stored.where("Customer_ID = 2").first().asDict()
    hashed = [
        c for c, t in project.bronze_config().table("customers").pii.items() if t.value == "encrypt_and_hash"
    ]
    assert hashed
    for column in hashed:
        expected = pii.hash_value(column, _values("customers", 2)[column], keys=NEW)
        assert row[pii.hash_column_name(column)] == expected
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{changes}`").first()
    assert detail.properties["delta.appendOnly"] == "true"  # lifted for the rewrite only

    # the stream takes no row twice, and takes the next change, written under the new key
    _protected(spark, "orders", NEW, [14]).write.format("delta").mode("append").save(str(changes))
    assert drain() == 4

    # run again: nothing left to do, nothing written
    before = {p: _commits(p) for p in (customers, changes)}
    again = pii_rotation.rotate(spark, pii_rotation.local_datasets(storage, config), config, OLD, NEW)
    assert {r.action for r in again} == {"done already"}
    assert before == {p: _commits(p) for p in (customers, changes)}


def test_an_interrupted_rotation_resumes_without_rewriting(spark: Any, storage: Path) -> None:
    customers = storage / "inventory_bronze_batch" / "tables" / "bz_customers"
    # interrupted after the rewrite, before the record: new ciphertext, old fingerprint
    _protected(spark, "customers", NEW, [1, 2]).write.format("delta").mode("overwrite").save(str(customers))
    assert recorded_fingerprint(customers) == OLD.fingerprint
    # and interrupted right after lifting the change archive's append-only for its rewrite
    changes = storage / "inventory_bronze_cdc" / "tables" / "bz_orders_changes"
    lifted = f"'{pii_rotation.APPEND_ONLY}' = 'false', '{pii_rotation.LIFTED}' = 'true'"
    spark.sql(f"ALTER TABLE delta.`{changes}` SET TBLPROPERTIES ({lifted})")
    done = {r.dataset: r for r in _rotate(spark, storage, OLD, NEW)}
    assert done["bz_customers"].action == "recorded" and done["bz_customers"].rows == 0
    assert done["bz_orders_changes"].action == "rewritten"
    properties = table_configuration(changes)
    assert properties[pii_rotation.APPEND_ONLY] == "true" and properties[pii_rotation.LIFTED] == "false"
    assert recorded_fingerprint(customers) == NEW.fingerprint
    assert _plain(spark, customers, "customers", NEW)[2] == _values("customers", 2)


def test_a_third_key_or_the_same_key_is_refused_before_writing(spark: Any, storage: Path) -> None:
    customers = storage / "inventory_bronze_batch" / "tables" / "bz_customers"
    spark.sql(f"ALTER TABLE delta.`{customers}` SET TBLPROPERTIES ('{PROPERTY}' = '{THIRD.fingerprint}')")
    commits = {p: _commits(p) for p in storage.glob("*/tables/*")}
    with pytest.raises(PiiProtectionError, match=f"bz_customers \\({THIRD.fingerprint}\\)"):
        _rotate(spark, storage, OLD, NEW)
    assert commits == {p: _commits(p) for p in storage.glob("*/tables/*")}
    with pytest.raises(PiiProtectionError, match="same key"):
        _rotate(spark, storage, NEW, NEW)
    with pytest.raises(PiiProtectionError, match="No table holding PII"):
        _rotate(spark, storage / "empty", OLD, NEW)


def test_cli_rotate_names_what_is_wrong_in_one_line(
    spark: Any, storage: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from inventory_bronze.cli import main
    from inventory_bronze.secrets import env_var_for

    monkeypatch.setenv("INVENTORY_BRONZE_SECRETS_FILE", str(storage / "no-secrets.json"))
    monkeypatch.delenv(pii.ENV_KEY_SECRET, raising=False)
    monkeypatch.setenv(env_var_for("KOld"), base64.b64encode(bytes(range(1, 33))).decode())
    monkeypatch.setenv(env_var_for(pii.DEFAULT_KEY_SECRET), base64.b64encode(bytes(range(50, 82))).decode())
    pii.reset_keys()
    try:
        assert main(["pii", "rotate", "--storage", str(storage), "--from-secret", "KOld"]) == 0
        out = capsys.readouterr().out
        assert "bz_customers: 2 rows re-encrypted" in out and f"under key {NEW.fingerprint} now" in out
        # the old key again: the same key on both sides
        assert (
            main(["pii", "rotate", "--storage", str(storage), "--from-secret", pii.DEFAULT_KEY_SECRET]) == 1
        )
        err = capsys.readouterr().err
        assert (
            err.startswith("error: The old and the new PII key are the same key") and "Traceback" not in err
        )
        assert main(["pii", "rotate", "--storage", str(storage), "--from-secret", "KMissing"]) == 1
        assert "KMissing" in capsys.readouterr().err
        assert main(["pii", "rotate", "--catalog", "workspace", "--from-secret", "KOld"]) == 1
        assert capsys.readouterr().err.startswith("error: --catalog and --schema go together")
    finally:
        pii.reset_keys()


def test_rotation_over_catalog_tables(spark: Any, storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Where the pipelines publish to a catalog (Databricks): the same rotation through the tables' names
    (`pii rotate --catalog C --schema S`), their clustering and properties kept, resumable."""
    schema = "spark_catalog.rotation_test"
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
    try:
        customers = f"{schema}.bz_customers"
        source = spark.read.format("delta").load(
            str(storage / "inventory_bronze_batch" / "tables" / "bz_customers")
        )
        source.writeTo(customers).using("delta").tableProperty(PROPERTY, OLD.fingerprint).partitionedBy(
            "Customer_ID"
        ).create()
        config = project.bronze_config()
        found = pii_rotation.catalog_datasets(spark, schema, config)
        assert [(d.dataset, d.name) for d in found] == [("bz_customers", customers)]
        done = pii_rotation.rotate(spark, found, config, OLD, NEW)
        assert [(r.dataset, r.where, r.rows, r.action) for r in done] == [
            ("bz_customers", customers, 2, "rewritten")
        ]
        properties = {r[0]: r[1] for r in spark.sql(f"SHOW TBLPROPERTIES {customers}").collect()}
        assert properties[PROPERTY] == NEW.fingerprint
        df = spark.read.table(customers)
        for column in project.bronze_config().table("customers").pii:
            df = pii.decrypt_column(df, "customers", column, keys=NEW)
        assert {r.Customer_ID: r.asDict()["Customer_Name"] for r in df.collect()} == {
            i: _values("customers", i)["Customer_Name"] for i in (1, 2)
        }
        assert spark.sql(f"DESCRIBE DETAIL {customers}").first().partitionColumns == ["Customer_ID"]
        again = pii_rotation.rotate(
            spark, pii_rotation.catalog_datasets(spark, schema, config), config, OLD, NEW
        )
        assert [r.action for r in again] == ["done already"]
    finally:
        spark.sql(f"DROP DATABASE IF EXISTS {schema} CASCADE")
