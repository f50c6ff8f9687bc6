"""Snapshot reads of source tables through Spark JDBC (PostgreSQL JDBC driver), for the batch and
full-refresh tables and for the initial snapshot of a change stream.

`read_table(spark, table, info, fetch_size=10000, partitions=1, snapshot=None)` returns a DataFrame of
one declared table: its declared columns in order, then any column added to the table since. Types are kept: numeric(p,s) -> DecimalType(p,s),
timestamptz -> TimestampType (an instant, shown in the session time zone, UTC here), timestamp ->
TimestampNTZType (`preferTimestampNTZ`), date -> DateType, uuid and jsonb -> StringType.

Rows are streamed with a server-side cursor of `fetch_size` rows (the JDBC driver only uses a cursor
when autocommit is off, which Spark's PostgreSQL dialect does when a fetch size is set). With
`partitions > 1`, the numeric primary key's range [min, max] is split into that many strides, one JDBC
query each, run in parallel; rows outside the bounds (inserted meanwhile) fall into the first or last
partition, so every row is read exactly once.

Consistency guaranteed:

* `partitions=1`: the table as of one point in time (one SELECT in one transaction).
* `partitions>1` with `snapshot=`: every partition imports the same exported snapshot (`SET TRANSACTION
  SNAPSHOT` in a REPEATABLE READ transaction), so the whole DataFrame is the table as of that one point
  in time. `consistent_snapshot(info)` exports one and keeps it alive; reading several tables with it
  gives a snapshot that is consistent across tables too. The DataFrames must be evaluated (written,
  cached, counted) inside the `with` block; afterwards evaluating them fails ("invalid snapshot
  identifier"). A snapshot exported by a replication slot at creation can be passed the same way.
* `partitions>1` without a snapshot: each partition is consistent on its own, but partitions read at
  slightly different times, so a transaction that changes rows in two key ranges meanwhile can be seen
  half-applied. Use it only when the table is not being written, or pass a snapshot.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from inventory_bronze.source import retry
from inventory_bronze.source.errors import SnapshotError
from inventory_bronze.source.schema import Table, table
from inventory_bronze.source.server import ServerInfo

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f]+-[0-9A-Fa-f]+-[0-9]+$")
_INTEGER_TYPES = {"integer", "bigint", "smallint"}


@dataclass(frozen=True)
class ExportedSnapshot:
    """A snapshot exported by an open REPEATABLE READ transaction, and the WAL position it was taken at."""

    snapshot_id: str
    lsn: str


@contextmanager
def consistent_snapshot(info: ServerInfo) -> Iterator[ExportedSnapshot]:
    """Export a snapshot and keep it importable until the block ends (its transaction stays open)."""
    try:
        conn = info.connect()
    except psycopg.Error as err:  # pragma: no cover - connect() already maps errors
        raise SnapshotError(f"Cannot open the snapshot connection: {err}") from err
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot(), pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        yield ExportedSnapshot(snapshot_id=str(row[0]), lsn=str(row[1]))
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()


def snapshot_init_statement(snapshot_id: str) -> str:
    """The JDBC session statement that makes a partition read inside an exported snapshot."""
    if not _SNAPSHOT_ID.match(snapshot_id):
        raise SnapshotError(
            f"'{snapshot_id}' is not a PostgreSQL snapshot identifier (like 00000003-0000001B-1)."
        )
    return f"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT '{snapshot_id}'"


def key_bounds(info: ServerInfo, declared: Table, snapshot_id: str | None = None) -> tuple[int, int] | None:
    """(min, max) of the table's single integer primary key (inside the snapshot when given); None if empty."""
    key = declared.primary_key[0]
    with info.connect() as conn:
        if snapshot_id:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id)))
        row = conn.execute(
            sql.SQL("SELECT min({k}), max({k}) FROM {t}").format(k=sql.Identifier(key), t=declared.ident())
        ).fetchone()
    if row is None or row[0] is None:
        return None
    return int(row[0]), int(row[1])


def jdbc_options(
    info: ServerInfo, declared: Table, *, fetch_size: int, snapshot_id: str | None = None
) -> dict[str, str]:
    options = {
        "url": info.jdbc_url,
        "dbtable": f"{declared.qualified}",
        "fetchsize": str(fetch_size),
        "preferTimestampNTZ": "true",
        "ApplicationName": "inventory-bronze-snapshot",
        **info.jdbc_properties(),
    }
    if snapshot_id:
        options["sessionInitStatement"] = snapshot_init_statement(snapshot_id)
    return options


def read_table(
    spark: SparkSession,
    table_name: str,
    info: ServerInfo,
    *,
    fetch_size: int = 10_000,
    partitions: int = 1,
    snapshot: str | ExportedSnapshot | None = None,
) -> DataFrame:
    """A DataFrame of one declared source table (see the module docstring for consistency)."""
    declared = table(table_name)
    if fetch_size < 1:
        raise SnapshotError(f"fetch_size must be >= 1 (got {fetch_size}) for {declared.qualified}.")
    if partitions < 1:
        raise SnapshotError(f"partitions must be >= 1 (got {partitions}) for {declared.qualified}.")
    snapshot_id = snapshot.snapshot_id if isinstance(snapshot, ExportedSnapshot) else snapshot
    options = jdbc_options(info, declared, fetch_size=fetch_size, snapshot_id=snapshot_id)
    if partitions > 1:
        key = declared.primary_key[0]
        if len(declared.primary_key) != 1 or declared.column(key).type not in _INTEGER_TYPES:
            raise SnapshotError(
                f"{declared.qualified} has no single integer primary key to partition by: read it with partitions=1."
            )
        bounds = key_bounds(info, declared, snapshot_id)
        if bounds is not None and bounds[1] > bounds[0]:
            options.update(
                {
                    "partitionColumn": key,
                    "lowerBound": str(bounds[0]),
                    "upperBound": str(bounds[1] + 1),
                    "numPartitions": str(partitions),
                }
            )
    frame = retry.call(
        spark.read.format("jdbc").options(**options).load,
        what=f"snapshot of {declared.qualified}",
        host=f"{info.host}:{info.port}",
        secrets=[info.password],
    )
    missing = [c for c in declared.column_names if c not in frame.columns]
    if missing:
        raise SnapshotError(
            f"{declared.qualified} lacks declared column(s) {missing}: the database differs from schema.TABLES "
            f"(run `inventory-bronze seed` to recreate it)."
        )
    extra = [c for c in frame.columns if c not in declared.column_names]  # e.g. added by ALTER TABLE
    return frame.select(*[frame[c] for c in (*declared.column_names, *extra)])
