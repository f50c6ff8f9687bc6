"""Snapshot reads through Spark JDBC equal the tables, keep their types, and can share one snapshot."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest

from inventory_bronze.source.errors import SnapshotError
from inventory_bronze.source.schema import table
from inventory_bronze.source.snapshot import consistent_snapshot, read_table, snapshot_init_statement
from inventory_bronze.source.workload import run_changes


def _normal(value: Any) -> Any:
    """Spark and psycopg values to one comparable form (UTC datetimes, text uuids, parsed JSON)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _spark_rows(frame, json_columns: tuple[str, ...] = (), tz_columns: tuple[str, ...] = ()) -> set[tuple]:
    out = set()
    for row in frame.collect():
        values = []
        for name, value in row.asDict().items():
            if name in json_columns and value is not None:
                value = json.dumps(json.loads(value), sort_keys=True)
            elif name in tz_columns and value is not None:  # TimestampType: local wall time of this process
                value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
            values.append(_normal(value))
        out.add(tuple(values))
    return out


def _pg_rows(info, name: str, json_columns: tuple[str, ...] = ()) -> set[tuple]:
    declared = table(name)
    with info.connect() as conn:
        cur = conn.execute(f"SELECT * FROM {declared.qualified}")
        names = [d.name for d in cur.description]
        out = set()
        for row in cur.fetchall():
            values = []
            for col, value in zip(names, row, strict=True):
                if col in json_columns and value is not None:
                    value = json.dumps(value, sort_keys=True)
                values.append(_normal(value))
            out.add(tuple(values))
    return out


def test_read_equals_the_table_and_keeps_types(spark, pg_seeded) -> None:
    from pyspark.sql import types as T

    frame = read_table(spark, "orders", pg_seeded, fetch_size=100)
    fields = {f.name: f.dataType for f in frame.schema.fields}
    assert fields["Total_Amount"] == T.DecimalType(12, 2)
    assert fields["Order_Date"] == T.TimestampType()  # timestamptz: an instant
    assert fields["Created_At"] == T.TimestampNTZType()  # timestamp without time zone
    assert fields["Order_UUID"] == T.StringType() and fields["Order_ID"] == T.IntegerType()
    assert tuple(frame.columns) == table("orders").column_names
    tz = ("Order_Date", "Updated_At")
    assert _spark_rows(frame, tz_columns=tz) == _pg_rows(pg_seeded, "orders")

    products = read_table(spark, "products", pg_seeded, partitions=3)
    assert products.rdd.getNumPartitions() == 3
    assert dict(products.dtypes)["Attributes"] == "string"
    assert _spark_rows(products, ("Attributes",), ("Updated_At",)) == _pg_rows(
        pg_seeded, "products", ("Attributes",)
    )


def test_partitions_share_one_snapshot_while_the_table_changes(spark, pg_seeded) -> None:
    with pg_seeded.connect() as conn:
        before = conn.execute('SELECT count(*), sum("Line_Total") FROM tests.order_details').fetchone()
    with consistent_snapshot(pg_seeded) as snap:
        assert snap.lsn and "-" in snap.snapshot_id
        frame = read_table(spark, "order_details", pg_seeded, partitions=4, fetch_size=500, snapshot=snap)
        run_changes(pg_seeded, count=300, seed=2, quiet=True)  # inserts and deletes lines meanwhile
        with pg_seeded.connect() as conn:
            now = conn.execute('SELECT count(*), sum("Line_Total") FROM tests.order_details').fetchone()
        assert now != before
        got = frame.agg({"Order_Detail_ID": "count", "Line_Total": "sum"}).collect()[0]
        assert frame.rdd.getNumPartitions() == 4
    assert (got["count(Order_Detail_ID)"], got["sum(Line_Total)"]) == before


def test_bad_arguments_are_named(spark, pg_server) -> None:
    with pytest.raises(SnapshotError, match="partitions"):
        read_table(spark, "orders", pg_server, partitions=0)
    with pytest.raises(SnapshotError, match="fetch_size"):
        read_table(spark, "orders", pg_server, fetch_size=0)
    with pytest.raises(SnapshotError, match="snapshot identifier"):
        snapshot_init_statement("'; DROP TABLE x; --")
