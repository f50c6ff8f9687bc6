"""Where the audit tables live and how a derivation lands there: incremental and idempotent MERGEs.

Locally the audit tables are Delta folders `<storage>/audit/<table>` next to the pipelines' folders
(`<storage>/<pipeline>/tables`, `<storage>/<pipeline>/system/events`); on Databricks they are
`<catalog>.<schema>.<table>`, next to the bronze tables and the published event logs.

Tables: `bz_audit_log` (one row per bronze table per update, MERGE on (update_id, target_table)),
`bz_audit_expectations` (one row per expectation per table per update, MERGE on (update_id, target_table,
expectation)), `bz_reconciliation` (appended by `run`/`demo` and the hourly job's `reconcile` task after
they reconcile: source vs bronze per table, tagged with the update of the table's pipeline it checked) and
`bz_audit_schema_changes` (per `schema_change` event, one row per kind of change a bronze table's schema
took from its source: columns added, widened, or no longer written; MERGE on the event id and the kind).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from functools import reduce
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from inventory_bronze.audit import derive
from inventory_bronze.config import BronzeConfig, target_name
from inventory_bronze.errors import ConfigError

AUDIT_LOG = "bz_audit_log"
AUDIT_EXPECTATIONS = "bz_audit_expectations"
RECONCILIATION = "bz_reconciliation"
SCHEMA_CHANGES = "bz_audit_schema_changes"
AUDIT_TABLES = (AUDIT_LOG, AUDIT_EXPECTATIONS, RECONCILIATION, SCHEMA_CHANGES)
LOCAL_FOLDER = "audit"

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def default_targets(conf: BronzeConfig) -> dict[str, str]:
    """bz_<t> -> <source schema>.<t> for the tables of the configuration (conf/tables.yml)."""
    return {target_name(t): f"{conf.source.schema_}.{t}" for t in conf.table_names}


@dataclass(frozen=True)
class Location:
    """Local Delta folders under `root`, or tables of `catalog`.`schema` (Databricks)."""

    root: Path | None = None
    catalog: str | None = None
    schema: str | None = None

    def __post_init__(self) -> None:
        if self.root is None:
            for part, what in ((self.catalog, "catalog"), (self.schema, "schema")):
                if not part or not _IDENT.match(part):
                    raise ConfigError(f"--{what} {part!r} is not a plain identifier.")

    @classmethod
    def local(cls, storage: Path) -> Location:
        return cls(root=Path(storage) / LOCAL_FOLDER)

    def ref(self, table: str) -> str:
        return (
            str(self.root / table) if self.root is not None else f"`{self.catalog}`.`{self.schema}`.`{table}`"
        )

    def exists(self, spark: SparkSession, table: str) -> bool:
        if self.root is not None:
            return (self.root / table / "_delta_log").is_dir()
        return bool(spark.catalog.tableExists(f"{self.catalog}.{self.schema}.{table}"))

    def read(self, spark: SparkSession, table: str) -> DataFrame | None:
        if not self.exists(spark, table):
            return None
        if self.root is not None:
            return spark.read.format("delta").load(self.ref(table))
        return spark.read.table(self.ref(table))

    def append(self, df: DataFrame, table: str) -> None:
        writer = df.write.format("delta").mode("append").option("mergeSchema", "true")
        writer.save(self.ref(table)) if self.root is not None else writer.saveAsTable(self.ref(table))

    def merge(self, spark: SparkSession, df: DataFrame, table: str, keys: Sequence[str]) -> None:
        """Upsert `df` on `keys`: a key already there is updated in place, never added twice."""
        from delta.tables import DeltaTable

        if not self.exists(spark, table):
            self.append(df.limit(0), table)
        target = (
            DeltaTable.forPath(spark, self.ref(table))
            if self.root is not None
            else DeltaTable.forName(spark, self.ref(table))
        )
        condition = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        target.alias("t").merge(
            df.alias("s"), condition
        ).whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()


@dataclass(frozen=True)
class AuditResult:
    updates: list[str]  # the updates derived by this run (new, or with a new reconciliation)
    audit_rows: int
    expectation_rows: int
    location: Location

    def summary(self) -> str:
        if not self.updates:
            return f"audit: nothing new ({self.location.ref(AUDIT_LOG)})"
        return (
            f"audit: {len(self.updates)} update(s) derived, {self.audit_rows} table row(s), "
            f"{self.expectation_rows} expectation row(s) -> {self.location.ref(AUDIT_LOG)}"
        )


def _union(frames: list[DataFrame]) -> DataFrame | None:
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames) if frames else None


def pending_updates(
    known: DataFrame, existing: DataFrame | None, reconciliation: DataFrame | None
) -> list[str]:
    """Updates of `known` (finished and running) to derive: those not in the audit yet, those the audit
    holds as still running (their figures have grown, or they ended), and those whose reconciliation
    arrived after they were derived."""
    ids = known.select("update_id")
    if existing is None:
        return sorted(r.update_id for r in ids.collect())
    new = ids.join(existing.select("update_id"), "update_id", "left_anti")
    unfinished = existing.where(~F.col("update_state").isin(*derive.TERMINAL_UPDATE_STATES)).select(
        "update_id"
    )
    new = new.unionByName(unfinished.join(ids, "update_id", "left_semi"))
    if reconciliation is not None:
        waiting = (
            existing.where(F.col("reconciliation_status").isNull())
            .join(reconciliation.select(*derive.AUDIT_KEYS), list(derive.AUDIT_KEYS))
            .select("update_id")
        )
        new = new.unionByName(waiting)
    return sorted({r.update_id for r in new.collect()})


def derive_into(
    spark: SparkSession,
    events: DataFrame,
    location: Location,
    targets: Mapping[str, str],
    bronze_tables: Mapping[str, DataFrame],
) -> AuditResult:
    """Derive the updates of `events` the audit lacks (or holds as running) and MERGE them in: a
    running update's rows show its figures so far and are replaced as it advances; once it ended, its
    final figures; rerunning changes nothing (idempotent)."""
    reconciliation = location.read(spark, RECONCILIATION)
    known = derive.updates(events, running=True)
    pending = pending_updates(known, location.read(spark, AUDIT_LOG), reconciliation)
    if not pending:
        return AuditResult([], 0, 0, location)
    only = spark.createDataFrame([(u,) for u in pending], "update_id string")
    since = known.join(only, "update_id").agg(F.min("started")).first()[0]
    bronze_rows = _union(
        [
            df.where(F.col("load_timestamp") >= F.lit(since)).select(
                F.lit(name).alias("target_table"), F.col("batch_id").cast("string"), "load_timestamp"
            )
            for name, df in bronze_tables.items()
            if {"batch_id", "load_timestamp"} <= set(df.columns)
        ]
    )
    audit = derive.audit_log(events, targets, bronze_rows, reconciliation, only, running=True).cache()
    expectations = derive.audit_expectations(events, targets, only, running=True).cache()
    try:
        location.merge(spark, audit, AUDIT_LOG, derive.AUDIT_KEYS)
        location.merge(spark, expectations, AUDIT_EXPECTATIONS, derive.EXPECTATION_KEYS)
        changes = derive.schema_changes(events, targets, only)
        if changes.limit(1).count() or location.exists(spark, SCHEMA_CHANGES):
            location.merge(spark, changes, SCHEMA_CHANGES, derive.SCHEMA_CHANGE_KEYS)
        return AuditResult(pending, audit.count(), expectations.count(), location)
    finally:
        audit.unpersist()
        expectations.unpersist()


# ------------------------------------------------------------------------------------------- local
def event_log_paths(storage: Path) -> dict[str, Path]:
    """Pipeline key -> its event log (Delta) under the local storage."""
    return {
        p.parent.parent.name: p
        for p in sorted(Path(storage).glob("*/system/events"))
        if (p / "_delta_log").is_dir()
    }


def local_events(spark: SparkSession, storage: Path) -> DataFrame | None:
    return _union([spark.read.format("delta").load(str(p)) for p in event_log_paths(storage).values()])


def local_bronze_tables(
    spark: SparkSession, storage: Path, targets: Mapping[str, str]
) -> dict[str, DataFrame]:
    from inventory_bronze.reconcile import table_paths

    paths = table_paths(storage)
    return {t: spark.read.format("delta").load(str(paths[t])) for t in targets if t in paths}


RECONCILIATION_SCHEMA = (
    "update_id string, target_table string, source_table string, pipeline_name string, "
    "reconciled_at timestamp, status string, source_rows bigint, bronze_rows bigint, "
    "quarantined_only bigint, missing bigint, extra bigint, duplicates bigint, "
    "source_checksum decimal(38,0), bronze_checksum decimal(38,0)"
)


def record_reconciliation(
    spark: SparkSession,
    location: Location,
    events: DataFrame | None,
    rows: Sequence[Any],
    targets: Mapping[str, str],
) -> int:
    """Append `reconcile.reconcile_tables`'s result to `bz_reconciliation` at `location`, each table tagged
    with the latest update (a running continuous one included) of the pipeline defining it in `events`."""
    if events is None:
        return 0
    latest = Window.partitionBy("pipeline_id").orderBy(F.col("started").desc())
    tagged = {
        r.target_table: (r.update_id, r.pipeline_name)
        for r in derive.updates(events, running=True)
        .withColumn("_rn", F.row_number().over(latest))
        .where("_rn = 1")
        .join(derive.pipeline_tables(events, targets), "pipeline_id")
        .select("target_table", "update_id", "pipeline_name")
        .collect()
    }
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    records = []
    for r in rows:
        target = target_name(r.table)
        if target not in tagged:
            continue
        update_id, pipeline_name = tagged[target]
        records.append(
            (update_id, target, targets.get(target, r.table), pipeline_name, now, r.status, r.source_rows, r.bronze_rows,
             r.quarantined_only, r.missing, r.extra, r.duplicates, Decimal(r.source_checksum),
             Decimal(r.bronze_checksum))
        )  # fmt: skip
    if records:
        location.append(spark.createDataFrame(records, RECONCILIATION_SCHEMA), RECONCILIATION)
    return len(records)


def audit_local(
    spark: SparkSession,
    storage: Path,
    targets: Mapping[str, str],
    reconciliation: Sequence[Any] | None = None,
) -> AuditResult:
    """The local derivation over every pipeline under `storage` (what `audit`, `run` and `demo` call);
    `reconciliation` (rows of `reconcile.reconcile`) is recorded first so the audit carries it."""
    targets = dict(targets)
    location = Location.local(storage)
    if reconciliation:
        record_reconciliation(spark, location, local_events(spark, storage), reconciliation, targets)
    marker = Path(storage) / LOCAL_FOLDER / DERIVED_FROM
    if _derived_from(marker) == {"inputs": _inputs(storage, targets), "running": False}:
        return AuditResult([], 0, 0, location)  # nothing moved since the last derivation, nothing running
    events = local_events(spark, storage)
    if events is None:
        return AuditResult([], 0, 0, location)
    result = derive_into(spark, events, location, targets, local_bronze_tables(spark, storage, targets))
    audit = location.read(spark, AUDIT_LOG)
    running = audit is not None and bool(
        audit.where(~F.col("update_state").isin(*derive.TERMINAL_UPDATE_STATES)).limit(1).collect()
    )
    marker.parent.mkdir(parents=True, exist_ok=True)
    partial = marker.with_suffix(".tmp")  # replaced in one step: a crash leaves the old marker or the new one
    partial.write_text(json.dumps({"inputs": _inputs(storage, targets), "running": running}, sort_keys=True))
    os.replace(partial, marker)
    return result


# what a local derivation read, by Delta version, and whether an update was still running: when none of it
# moved and none was, the next derivation has nothing to do (a running one is derived again on every call)
DERIVED_FROM = "derived_from.json"


def _delta_version(table: str | Path) -> int | None:
    """The latest version of the local Delta table at `table`, from its log's file names (no Spark)."""
    log = Path(table) / "_delta_log"
    versions = [int(p.stem) for p in log.glob("*.json") if p.stem.isdigit()] if log.is_dir() else []
    return max(versions, default=None)


def _inputs(storage: Path, targets: Mapping[str, str]) -> Any:
    folder = Path(storage) / LOCAL_FOLDER
    inputs = {
        "event_logs": {key: _delta_version(path) for key, path in event_log_paths(storage).items()},
        "audit": {table: _delta_version(folder / table) for table in AUDIT_TABLES},
        "targets": sorted(targets.items()),
    }
    return json.loads(json.dumps(inputs))


def _derived_from(marker: Path) -> Any:
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return None


def audit_catalog(
    spark: SparkSession,
    catalog: str,
    schema: str,
    event_logs: Sequence[str],
    targets: Mapping[str, str],
) -> AuditResult:
    """The derivation on Databricks: the published event log tables and the bronze tables by name; the
    tables are `targets` (default_targets of the configuration the bundle's job names with --config)."""
    targets = dict(targets)
    location = Location(catalog=catalog, schema=schema)
    events = catalog_events(spark, location, event_logs)
    bronze = {t: spark.read.table(location.ref(t)) for t in targets if location.exists(spark, t)}
    return derive_into(spark, events, location, targets, bronze)


def catalog_events(spark: SparkSession, location: Location, event_logs: Sequence[str]) -> DataFrame:
    """The published event log tables `event_logs` of `location`, as one DataFrame."""
    catalog, schema = location.catalog, location.schema
    for name in event_logs:
        if not _IDENT.match(name):
            raise ConfigError(f"--event-log {name!r} is not a plain identifier.")
        if not location.exists(spark, name):
            raise ConfigError(
                f"Event log table {name!r} not found in {catalog}.{schema}: publish the pipeline's event log "
                f"there (`event_log: {{name: {name}, catalog: {catalog}, schema: {schema}}}` in its pipeline "
                "resource, resources/*.pipeline.yml) and run an update, or pass the name it is published under."
            )
    events = _union([spark.read.table(location.ref(name)) for name in event_logs])
    if events is None:
        raise ConfigError("No event log given: pass --event-log NAME for each pipeline.")
    return events
