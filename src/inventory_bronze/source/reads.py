"""How a pipeline reads one source table: a consistent JDBC snapshot (patterns batch, full_refresh) or the
log-based change stream `pgcdc` (cdc, micro_batch). Credentials come from the secrets chain; the read is
shaped by the table's `schema_evolution` (inventory_bronze.schema_drift)."""

from __future__ import annotations

import os
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from inventory_bronze import schema_drift
from inventory_bronze.config import Retry, SchemaEvolution
from inventory_bronze.source import retry
from inventory_bronze.source.schema import Table

#: the columns the change capture adds to each change (inventory_bronze.source.capture)
CAPTURE_COLUMNS = ("_op", "_lsn", "_commit_ts", "_seq", "_unchanged_cols")


def snapshot(
    spark: SparkSession,
    declared: Table,
    *,
    schema_evolution: SchemaEvolution,
    retries: Retry,
    fetch_size: int = 10_000,
) -> DataFrame:
    """The source table as it is now, through JDBC: the declared columns, then any the source added."""
    from inventory_bronze.secrets import source_connection

    conn = source_connection()
    reader = (
        spark.read.format("jdbc")
        .option("url", conn.jdbc_url)
        .option("dbtable", declared.qualified)
        .option("user", conn.user)
        .option("password", conn.password.reveal())
        .option("driver", "org.postgresql.Driver")
        .option("fetchsize", str(fetch_size))
        .option("preferTimestampNTZ", "true")
    )
    frame = retry.call(
        reader.load,
        what=f"snapshot of {declared.qualified}",
        host=conn.describe(),
        backoff=retry.Backoff(retries.retries, retries.first_delay_s, retries.factor),
        secrets=[conn.password],
        credentials=f"from secrets '{conn.user_secret}'/'{conn.password_secret}'",
    )
    check_snapshot_values(conn, declared, frame.columns)  # after the load: the source is reachable
    # the declared columns the source still has, then those it added (schema_drift: what bronze does)
    kept = [c for c in declared.column_names if c in frame.columns]
    added = [c for c in frame.columns if c not in declared.column_names]
    return follow_source(frame.select(*kept, *added), declared, schema_evolution)


def change_stream(spark: SparkSession, declared: Table, *, schema_evolution: SchemaEvolution) -> DataFrame:
    """Every insert, update, delete and truncate of the source table, from PostgreSQL's WAL."""
    from inventory_bronze.source.capture import register

    register(spark)
    reader = spark.readStream.format("pgcdc").option("table", declared.qualified)
    return follow_source(reader.options(**_capture_connection_options()).load(), declared, schema_evolution)


def follow_source(frame: DataFrame, declared: Table, mode: SchemaEvolution) -> DataFrame:
    """The source read shaped by the table's `schema_evolution` (inventory_bronze.schema_drift)."""
    return schema_drift.follow_source(frame, declared.name, mode, declared.column_names, CAPTURE_COLUMNS)


def _capture_connection_options() -> dict[str, str]:
    """How the data source's Python workers reach the source. They do not share this process's
    environment (on Databricks, dbutils lives in the driver's notebook process only): give them the local
    secrets file when one is set, else the connection resolved here."""
    from inventory_bronze.secrets import on_databricks
    from inventory_bronze.source.capture_connection import resolved_options

    secrets_file = os.environ.get("INVENTORY_BRONZE_SECRETS_FILE")
    if secrets_file and not on_databricks():
        return {"secretsFile": secrets_file}
    return resolved_options()


# PostgreSQL values with no Spark counterpart: the JDBC read fails on them without naming table or column
_NUMERIC_SPECIALS = ("NaN", "Infinity", "-Infinity")
_TIME_SPECIALS = ("infinity", "-infinity")


def _special_values(type_: str) -> tuple[str, ...]:
    t = type_.lower()
    if t.startswith(("numeric", "decimal")):
        return _NUMERIC_SPECIALS
    if t.startswith(("timestamp", "date")):
        return _TIME_SPECIALS
    return ()


def check_snapshot_values(conn: Any, declared: Table, present: list[str]) -> None:
    """Fail before the snapshot is read when a numeric column holds NaN or +-Infinity, or a date/timestamp
    column +-infinity: Spark's decimal and time types cannot hold them and the JDBC read would fail with
    an error naming neither table nor column. One scan of the table per snapshot (it is read whole anyway);
    if it cannot run (a column is gone, the source went away), the snapshot read itself reports that."""
    import psycopg
    from psycopg import sql

    from inventory_bronze.source.capture_connection import open_connection
    from inventory_bronze.source.errors import SnapshotError, SourceError

    checks = [
        (c.name, _special_values(c.type))
        for c in declared.columns
        if _special_values(c.type) and c.name in present  # a column the source dropped is not checked
    ]
    if not checks:
        return
    conditions = [
        sql.SQL("{}::text IN ({})").format(sql.Identifier(name), sql.SQL(", ").join(map(sql.Literal, values)))
        for name, values in checks
    ]

    def case(then: Any) -> sql.Composed:
        return sql.SQL("CASE {} END").format(
            sql.SQL(" ").join(
                sql.SQL("WHEN {} THEN {}").format(cond, then(name))
                for cond, (name, _) in zip(conditions, checks, strict=True)
            )
        )

    key = declared.primary_key[0]
    query = sql.SQL(
        "SELECT {key}::text, {which}, {value}, count(*) OVER () FROM {table} WHERE {any} LIMIT 1"
    ).format(
        key=sql.Identifier(key),
        which=case(sql.Literal),
        value=case(lambda name: sql.SQL("{}::text").format(sql.Identifier(name))),
        table=declared.ident(),
        any=sql.SQL(" OR ").join(conditions),
    )
    try:
        with open_connection(conn) as pg:
            found = pg.execute(query).fetchone()
    except (psycopg.Error, OSError, SourceError):
        return
    if found is None:
        return
    key_value, column, special, rows = found
    raise SnapshotError(
        f"{declared.qualified}.{column} holds {special} ({rows} row(s), e.g. {key}={key_value}), which "
        f"Spark cannot represent, so the snapshot of {declared.qualified} cannot be read. Fix those rows at "
        f"the source (e.g. set {column} to NULL or a real value) and run the update again."
    )
