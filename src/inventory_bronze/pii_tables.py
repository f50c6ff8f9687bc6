"""Which PII key wrote which table: its fingerprint recorded as a table property, checked before an update.

Every dataset that holds a table's PII columns (the bronze table, its quarantine and, for captured tables,
its change archive) carries the table property `inventory.pii.key_fingerprint`: the fingerprint of the data
key that encrypted it (`PiiKeys.fingerprint`, never the key). The pipelines declare it (new tables get it
when they are created); before a local update, `check_storage` compares what the existing tables recorded
with the current key and refuses the update, naming the tables and both fingerprints, when they differ:
rows under two keys in one table would no longer decrypt or join. A full refresh rewrites the tables it
resets, so it records the current key on them instead of checking. On Databricks the pipeline code itself
checks the published tables while it defines them (`check_published`): the continuous pipeline has no job
in front of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from inventory_bronze.config import BronzeConfig
from inventory_bronze.errors import PiiProtectionError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from inventory_bronze.pii import PiiKeys

PROPERTY = "inventory.pii.key_fingerprint"
#: pipeline setting: the `catalog.schema` the pipeline publishes to (set by the bundle, see check_published)
PUBLISHED_CONF_KEY = "inventory.published_schema"


def protected_datasets(config: BronzeConfig) -> dict[str, str]:
    """The datasets holding PII columns, each with its source table: per table with PII, bz_<table>, its
    quarantine and its change archive (captured tables)."""
    names = {}
    for table, tcfg in config.tables.items():
        if tcfg.pii:
            names.update({f"bz_{table}": table, f"bz_{table}_quarantine": table})
            if tcfg.pattern.uses_capture:
                names[f"bz_{table}_changes"] = table
    return names


def table_configuration(path: Path, spark: SparkSession | None = None) -> dict[str, str] | None:
    """The table properties of the Delta table at `path` (None: no table there). Read from the checksum file
    of its latest version when there is one (no Spark job), else from the table's details."""
    log = path / "_delta_log"
    versions = sorted(int(p.stem) for p in log.glob("*.json") if p.stem.isdigit())
    if not versions:
        return None
    crc = log / f"{versions[-1]:020d}.crc"
    try:
        return dict(json.loads(crc.read_text())["metadata"].get("configuration") or {})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        if spark is None:
            from inventory_bronze.spark_session import get_spark

            spark = get_spark("inventory-bronze")
        from delta.tables import DeltaTable

        return dict(DeltaTable.forPath(spark, str(path)).detail().first()["properties"] or {})


def recorded_fingerprint(path: Path, spark: SparkSession | None = None) -> str | None:
    """The fingerprint a Delta table at `path` recorded (None: none recorded, or no table)."""
    return (table_configuration(path, spark) or {}).get(PROPERTY)


def set_properties(spark: SparkSession, path: Path, properties: dict[str, str]) -> None:
    """Set table properties of the Delta table at `path`, all in one commit."""
    quoted = str(path).replace("`", "``")
    set_table_properties(spark, f"delta.`{quoted}`", properties)


def set_table_properties(spark: SparkSession, table: str, properties: dict[str, str]) -> None:
    """Set table properties of `table` (a catalog name or `delta.`path``), all in one commit."""
    pairs = ", ".join(f"'{k}' = '{v}'" for k, v in properties.items())
    spark.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ({pairs})")


def catalog_properties(spark: SparkSession, name: str) -> dict[str, str]:
    """The table properties of the catalog table `name`."""
    return {r[0]: r[1] for r in spark.sql(f"SHOW TBLPROPERTIES {name}").collect()}


def _tables(storage: Path, names: list[str]) -> list[tuple[str, Path]]:
    """(dataset, path) of the protected datasets present in a pipeline's storage."""
    paths = [(name, storage / "tables" / name) for name in names]
    return [(name, path) for name, path in paths if (path / "_delta_log").is_dir()]


def check_storage(
    spark: SparkSession, storage: Path, config: BronzeConfig, keys: PiiKeys, full_refresh: bool = False
) -> list[str]:
    """Refuse an update whose PII key is not the one a pipeline's tables (under `storage`) were written with.

    Raises PiiProtectionError naming every table recorded under another key and both fingerprints. Tables
    that recorded none (written before fingerprints were kept) are recorded as written under the current
    key; with `full_refresh` (they are rewritten) every table is. Returns the tables it recorded."""
    present = [
        (name, path, recorded_fingerprint(path, spark))
        for name, path in _tables(storage, protected_datasets(config))
    ]
    others = {name: fp for name, _, fp in present if fp not in (None, keys.fingerprint)}
    if others and not full_refresh:
        raise _other_key(keys, others)
    recorded = []
    for name, path, fp in present:
        if fp != keys.fingerprint:
            set_properties(spark, path, {PROPERTY: keys.fingerprint})
            recorded.append(name)
    return recorded


def _other_key(keys: PiiKeys, others: dict[str, str]) -> PiiProtectionError:
    listed = ", ".join(f"{name} ({fp})" for name, fp in sorted(others.items()))
    return PiiProtectionError(
        f"The PII key (secret '{keys.secret_name}', fingerprint {keys.fingerprint}) is not the key these "
        f"tables were written with: {listed}. Nothing was written. Set the key that wrote them "
        f"(`inventory-bronze pii fingerprint` prints the current key's), or move them to the new key with "
        f"`inventory-bronze pii rotate --from-secret <the old key's secret>` (docs/pii.md, rotation)."
    )


_CHECKED: set[tuple[str, str, str]] = set()


def check_published(
    spark: SparkSession, schema: str, table: str, config: BronzeConfig, keys: PiiKeys
) -> None:
    """The check of `check_storage` where no job runs before an update (the continuous pipeline on
    Databricks): the pipeline code calls it while it defines `table`'s datasets, so an update under another
    key fails before any flow runs. `schema` is the `catalog.schema` the pipeline publishes to; the datasets
    of `table` found there must have recorded the current key (or none). A catalog this session does not
    know (a local run of the bundle's settings) is not checked here: `check_storage` checks local runs."""
    if (schema, table, keys.fingerprint) in _CHECKED:
        return
    catalog = schema.split(".", 1)[0]
    if catalog not in {c.name for c in spark.catalog.listCatalogs()}:
        _CHECKED.add((schema, table, keys.fingerprint))
        return
    others = {}
    for name in (n for n, t in protected_datasets(config).items() if t == table):
        qualified = f"{schema}.{name}"
        if not spark.catalog.tableExists(qualified):
            continue
        properties = catalog_properties(spark, qualified)
        if properties.get(PROPERTY) not in (None, keys.fingerprint):
            others[name] = properties[PROPERTY]
    if others:
        raise _other_key(keys, others)
    _CHECKED.add((schema, table, keys.fingerprint))
