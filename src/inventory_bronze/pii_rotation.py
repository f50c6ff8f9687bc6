"""Rotating the PII key over a local storage: every PII dataset re-encrypted and re-hashed under the new key.

    inventory-bronze pii rotate --storage var/pipelines --from-secret KPiiEncryptionKeyPrevious

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
update runs on the storage.
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
    protected_datasets,
    recorded_fingerprint,
    set_properties,
    table_configuration,
)

APPEND_ONLY = "delta.appendOnly"
#: set while a rotation has lifted delta.appendOnly for its rewrite (so that a resumed one restores it)
LIFTED = "inventory.pii.rotation_lifted_append_only"

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class Rotated:
    dataset: str
    path: Path
    rows: int  # rows rewritten (0: only the record was missing, or nothing to do)
    action: str  # "rewritten", "recorded" (rewritten before an interruption), "done already"


def _datasets(storage: Path, config: BronzeConfig) -> list[tuple[str, str, Path]]:
    """(source table, dataset, path) of every PII dataset in any pipeline folder of the storage."""
    tables = protected_datasets(config)
    paths = sorted(storage.glob("*/tables/*"))
    return [(tables[p.name], p.name, p) for p in paths if p.name in tables and (p / "_delta_log").is_dir()]


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
    # the configured PII columns, and those the source added since the table was declared (bronze.protect
    # encrypts them too)
    added = {c: PiiTreatment.encrypt for c in undeclared_columns(df.columns, table)}
    treatments = {**added, **config.tables[table].pii}
    hashes = {
        pii.hash_column_name(c).lower() for c, t in treatments.items() if t is PiiTreatment.encrypt_and_hash
    }
    plain = df.drop(*[c for c in df.columns if c.lower() in hashes])
    for column in treatments:
        plain = pii.decrypt_column(plain, table, column, keys=old)
    protected = pii.protect(plain, table, treatments, keys=new)
    return protected.select(*df.columns)  # the stored order (hash columns right after their column)


def _finished(path: Path, new: pii.PiiKeys, spark: SparkSession) -> dict[str, str]:
    """The properties that end a dataset's rotation: the new key's fingerprint and, where the rotation
    lifted `delta.appendOnly` for its rewrite, append-only again (one commit: never one without the other)."""
    properties = table_configuration(path, spark) or {}
    done = {PROPERTY: new.fingerprint}
    if properties.get(LIFTED) == "true":
        done.update({APPEND_ONLY: "true", LIFTED: "false"})
    return done


def rotate(
    spark: SparkSession,
    storage: Path,
    config: BronzeConfig,
    old: pii.PiiKeys,
    new: pii.PiiKeys,
    progress: Callable[[str], None] = lambda line: None,
) -> list[Rotated]:
    """Re-encrypt every PII dataset of `storage` from `old` to `new` (see the module's text)."""
    if old.fingerprint == new.fingerprint:
        raise PiiProtectionError(
            f"The old and the new PII key are the same key (fingerprint {new.fingerprint}): store the new key "
            f"under '{new.secret_name}' and the old one under the secret given with --from-secret."
        )
    found = [
        (table, name, path, recorded_fingerprint(path, spark))
        for table, name, path in _datasets(storage, config)
    ]
    if not found:
        raise PiiProtectionError(
            f"No table holding PII under {storage}: nothing to rotate (is it the pipelines' storage?)."
        )
    foreign = [(name, fp) for _, name, _, fp in found if fp not in (old.fingerprint, new.fingerprint, None)]
    if foreign:
        listed = ", ".join(f"{name} ({fp})" for name, fp in foreign)
        raise PiiProtectionError(
            f"These tables were written under neither key (old {old.fingerprint}, new {new.fingerprint}): "
            f"{listed}. Nothing was rotated: give the key that wrote them with --from-secret."
        )
    done = []
    for table, name, path, fp in found:
        started = time.monotonic()
        if fp == new.fingerprint:
            done.append(Rotated(name, path, 0, "done already"))
            progress(f"{name}: under the new key already")
            continue
        df = spark.read.format("delta").load(str(path))
        first = next(iter(config.tables[table].pii))
        column = next(c for c in df.columns if c.lower() == first.lower())
        sample = df.where(df[column].isNotNull()).select(column).first()  # None: the column holds no value
        reopened = sample is not None and not _opens_with(table, column, sample[0], old)
        if reopened and _opens_with(table, column, sample[0], new):
            set_properties(spark, path, _finished(path, new, spark))  # rewritten before an interruption
            done.append(Rotated(name, path, 0, "recorded"))
            progress(f"{name}: rewritten before, the new key recorded")
            continue
        rewritten = _reencrypted(df, table, config, old, new).persist()
        try:
            rows = rewritten.count()  # every value opened with the old key before anything is written
            if (table_configuration(path, spark) or {}).get(APPEND_ONLY) == "true":
                set_properties(spark, path, {APPEND_ONLY: "false", LIFTED: "true"})  # a rewrite is no append
            (
                rewritten.write.format("delta")
                .mode("overwrite")
                .option("replaceWhere", "true")  # keeps the table's properties and clustering
                .option("dataChange", "false")  # same rows: streams reading the table skip this commit
                .save(str(path))
            )
        finally:
            rewritten.unpersist()
        set_properties(spark, path, _finished(path, new, spark))
        done.append(Rotated(name, path, rows, "rewritten"))
        progress(f"{name}: {rows:,} rows re-encrypted ({time.monotonic() - started:.1f} s)")
    return done
