"""Rotating the PII key: every PII dataset re-encrypted and re-hashed under the new key, in a local storage
or in the catalog schema the pipelines publish to on Databricks.

    inventory-bronze pii rotate --storage var/pipelines --from-secret KPiiEncryptionKeyPrevious
    inventory-bronze pii rotate --catalog workspace --schema inventory_bronze --from-secret ...

Each dataset that `pii_tables` lists and that recorded the old key's fingerprint is rewritten in one Delta
commit (the PII columns decrypted with the old key, then protected with the new one; every other column,
the column order, the table's properties and clustering kept) and then records the new key's fingerprint.
The rewrite is marked as no data change (`dataChange=false`, like a compaction), so streams that read the
table (the change archives feed their quarantine and their AUTO CDC flow) do not take the rows again; an
append-only table (the change archives) is opened for the rewrite only, and closed again in the commit
that records the new key.

Resumable: a dataset that records the new key is done; one that records the old key but whose ciphertext
already opens with the new key (interrupted between its rewrite and its record) only gets the record.
A dataset recorded under a third key stops the rotation before it writes, naming it. Run it while no
update runs (on Databricks: with the pipelines stopped; their next update declares the new key's
fingerprint, which the rotated tables hold).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from inventory_bronze import pii
from inventory_bronze.bronze import undeclared_columns
from inventory_bronze.config import BronzeConfig, PiiTreatment
from inventory_bronze.errors import PiiProtectionError
from inventory_bronze.pii_tables import (
    PROPERTY,
    catalog_properties,
    protected_datasets,
    set_properties,
    set_table_properties,
    table_configuration,
)
from inventory_bronze.source import schema as source_schema

APPEND_ONLY = "delta.appendOnly"
#: set while a rotation has lifted delta.appendOnly for its rewrite (so that a resumed one restores it)
LIFTED = "inventory.pii.rotation_lifted_append_only"

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class PiiDataset:
    """A dataset holding PII: a Delta table under a local storage (`path`) or in a catalog (`name`)."""

    source_table: str
    dataset: str
    path: Path | None = None
    name: str | None = None  # catalog.schema.table

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else str(self.name)

    def read(self, spark: SparkSession) -> DataFrame:
        if self.path is not None:
            return spark.read.format("delta").load(str(self.path))
        return spark.read.table(str(self.name))

    def properties(self, spark: SparkSession) -> dict[str, str]:
        if self.path is not None:
            return table_configuration(self.path, spark) or {}
        return catalog_properties(spark, str(self.name))

    def set_properties(self, spark: SparkSession, properties: dict[str, str]) -> None:
        if self.path is not None:
            set_properties(spark, self.path, properties)
        else:
            set_table_properties(spark, str(self.name), properties)

    def overwrite(self, df: DataFrame) -> None:
        """All rows replaced in one commit that keeps the table's properties and clustering, marked as no
        data change (same rows: streams reading the table skip it)."""
        writer = df.write.format("delta").mode("overwrite").option("replaceWhere", "true")
        writer = writer.option("dataChange", "false")
        if self.path is not None:
            writer.save(str(self.path))
        else:
            writer.saveAsTable(str(self.name))


def local_datasets(storage: Path, config: BronzeConfig) -> list[PiiDataset]:
    """The PII datasets of every pipeline folder of a local storage."""
    tables = protected_datasets(config)
    paths = sorted(storage.glob("*/tables/*"))
    return [
        PiiDataset(tables[p.name], p.name, path=p)
        for p in paths
        if p.name in tables and (p / "_delta_log").is_dir()
    ]


def catalog_datasets(spark: SparkSession, schema: str, config: BronzeConfig) -> list[PiiDataset]:
    """The PII datasets the pipelines published to `schema` (catalog.schema)."""
    names = [(f"{schema}.{name}", name, table) for name, table in sorted(protected_datasets(config).items())]
    return [PiiDataset(table, name, name=q) for q, name, table in names if spark.catalog.tableExists(q)]


@dataclass(frozen=True)
class Rotated:
    dataset: str
    where: str  # the table's path or catalog name
    rows: int  # rows rewritten (0: only the record was missing, or nothing to do)
    action: str  # "rewritten", "recorded" (rewritten before an interruption), "done already"


def _opens_with(table: str, column: str, ciphertext: str, keys: pii.PiiKeys) -> bool:
    """Whether a stored ciphertext of `column` opens with `keys`."""
    try:
        pii.decrypt_value(table, column, ciphertext, keys=keys)
        return True
    except PiiProtectionError:
        return False


def _reencrypted(
    df: DataFrame, table: str, config: BronzeConfig, old: pii.PiiKeys, new: pii.PiiKeys
) -> DataFrame:
    # the configured PII columns, and those the source added since the table was declared (BronzeTable.protect
    # encrypts them too)
    added = {c: PiiTreatment.encrypt for c in undeclared_columns(df.columns, source_schema.table(table))}
    treatments = {**added, **config.tables[table].pii}
    hashes = {
        pii.hash_column_name(c).lower() for c, t in treatments.items() if t is PiiTreatment.encrypt_and_hash
    }
    plain = df.drop(*[c for c in df.columns if c.lower() in hashes])
    for column in treatments:
        plain = pii.decrypt_column(plain, table, column, keys=old)
    protected = pii.protect(plain, table, treatments, keys=new)
    return protected.select(*df.columns)  # the stored order (hash columns right after their column)


def _finished(ds: PiiDataset, new: pii.PiiKeys, spark: SparkSession) -> dict[str, str]:
    """The properties that end a dataset's rotation: the new key's fingerprint and, where the rotation
    lifted `delta.appendOnly` for its rewrite, append-only again (one commit: never one without the other)."""
    done = {PROPERTY: new.fingerprint}
    if ds.properties(spark).get(LIFTED) == "true":
        done.update({APPEND_ONLY: "true", LIFTED: "false"})
    return done


def rotate(
    spark: SparkSession,
    datasets: list[PiiDataset],
    config: BronzeConfig,
    old: pii.PiiKeys,
    new: pii.PiiKeys,
    progress: Callable[[str], None] = lambda line: None,
) -> list[Rotated]:
    """Re-encrypt `datasets` (`local_datasets` or `catalog_datasets`) from `old` to `new` (see the module's
    text)."""
    if old.fingerprint == new.fingerprint:
        raise PiiProtectionError(
            f"The old and the new PII key are the same key (fingerprint {new.fingerprint}): store the new key "
            f"under '{new.secret_name}' and the old one under the secret given with --from-secret."
        )
    if not datasets:
        raise PiiProtectionError(
            "No table holding PII there: nothing to rotate (is it the pipelines' storage, or the catalog and "
            "schema they publish to?)."
        )
    found = [(ds, ds.properties(spark).get(PROPERTY)) for ds in datasets]
    foreign = [(ds.dataset, fp) for ds, fp in found if fp not in (old.fingerprint, new.fingerprint, None)]
    if foreign:
        listed = ", ".join(f"{name} ({fp})" for name, fp in foreign)
        raise PiiProtectionError(
            f"These tables were written under neither key (old {old.fingerprint}, new {new.fingerprint}): "
            f"{listed}. Nothing was rotated: give the key that wrote them with --from-secret."
        )
    return [_rotate_one(spark, ds, fp, config, old, new, progress) for ds, fp in found]


def _rotate_one(
    spark: SparkSession,
    ds: PiiDataset,
    fp: str | None,
    config: BronzeConfig,
    old: pii.PiiKeys,
    new: pii.PiiKeys,
    progress: Callable[[str], None],
) -> Rotated:
    started = time.monotonic()
    name, table = ds.dataset, ds.source_table
    if fp == new.fingerprint:
        progress(f"{name}: under the new key already")
        return Rotated(name, ds.where, 0, "done already")
    df = ds.read(spark)
    first = next(iter(config.tables[table].pii))
    column = next(c for c in df.columns if c.lower() == first.lower())
    sample = df.where(df[column].isNotNull()).select(column).first()  # None: the column holds no value
    reopened = sample is not None and not _opens_with(table, column, sample[0], old)
    if reopened and _opens_with(table, column, sample[0], new):
        ds.set_properties(spark, _finished(ds, new, spark))  # rewritten before an interruption
        progress(f"{name}: rewritten before, the new key recorded")
        return Rotated(name, ds.where, 0, "recorded")
    rewritten = _reencrypted(df, table, config, old, new).persist()
    try:
        rows = rewritten.count()  # every value opened with the old key before anything is written
        if ds.properties(spark).get(APPEND_ONLY) == "true":
            ds.set_properties(spark, {APPEND_ONLY: "false", LIFTED: "true"})  # a rewrite is no append
        ds.overwrite(rewritten)
    finally:
        rewritten.unpersist()
    ds.set_properties(spark, _finished(ds, new, spark))
    progress(f"{name}: {rows:,} rows re-encrypted ({time.monotonic() - started:.1f} s)")
    return Rotated(name, ds.where, rows, "rewritten")
