"""The COPY + Arrow snapshot reader gives the values the row-by-row text converters give, edge cases included
(NULL vs empty text, quotes and newlines, infinite timestamps and dates, numeric NaN, time zones)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from inventory_bronze.source import snapshot_copy
from inventory_bronze.source.capture_slot import prepare_session
from inventory_bronze.source.capture_types import (
    META_FIELDS,
    catalog_columns,
    convert_value,
    converter_for_field,
    spark_schema,
)

TABLE = "copy_reader_probe"


@pytest.fixture
def edge_table(pg_conn: Any) -> Any:
    pg_conn.execute(f"DROP TABLE IF EXISTS tests.{TABLE}")
    pg_conn.execute(
        f"""CREATE TABLE tests.{TABLE} (
            id integer PRIMARY KEY, big bigint, small smallint, flag boolean, amount numeric(12, 2),
            label text, "Odd ""Name"" x" text, at_tz timestamptz, at_ntz timestamp, day date, ref uuid, doc jsonb)"""
    )
    pg_conn.execute(
        f"""INSERT INTO tests.{TABLE} VALUES
        (1, 9007199254740993, -3, true, 12.50, '', 'x', '2024-03-01 10:20:30.123456+02',
         '2024-03-01 10:20:30', '2024-03-01', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{"b": [1, 2], "a": "q"}}'),
        (2, NULL, NULL, false, 'NaN', E'line1\\nline2, "quoted"', NULL, 'infinity', '-infinity', 'infinity', NULL, NULL),
        (3, 0, 0, NULL, NULL, NULL, '', '-infinity', 'infinity', '-infinity', NULL, 'null'),
        (4, 1, 1, true, -0.01, 'ünïcödé €', ',', '1999-12-31 23:59:59+00', '1970-01-01 00:00:00.000001',
         '1970-01-01', NULL, '[]')"""
    )
    yield pg_conn
    pg_conn.execute(f"DROP TABLE IF EXISTS tests.{TABLE}")


def _row_path(conn: Any, fields: list[Any]) -> list[dict[str, Any]]:
    """What the cursor path gives: each column's text through its converter."""
    columns = ", ".join('"' + f.name.replace('"', '""') + '"::text' for f in fields)
    out = []
    for record in conn.execute(f"SELECT {columns} FROM tests.{TABLE} ORDER BY id").fetchall():
        out.append(
            {
                f.name: None if v is None else convert_value(converter_for_field(f), v, f.name)
                for f, v in zip(fields, record, strict=True)
            }
        )
    return out


def test_copy_batches_equal_the_row_converters(edge_table: Any) -> None:
    conn = edge_table
    prepare_session(conn)
    fields = [f for f in spark_schema(catalog_columns(conn, "tests", TABLE)).fields if f not in META_FIELDS]
    assert snapshot_copy.arrow_supported(fields)
    expected = _row_path(conn, fields)
    with conn.transaction():
        batches = list(snapshot_copy.copy_batches(conn, "tests", TABLE, fields))
    got = sorted(pa.Table.from_batches(batches).to_pylist(), key=lambda r: r["id"])
    assert len(got) == 4
    assert got == expected
    # spot checks of the edge cases themselves
    assert got[0]["label"] == "" and got[2]["label"] is None
    assert got[1]["label"] == 'line1\nline2, "quoted"'
    assert got[0]["at_tz"] == dt.datetime(2024, 3, 1, 8, 20, 30, 123456, tzinfo=dt.timezone.utc)
    assert got[1]["amount"] is None and got[1]["at_ntz"] == dt.datetime(1, 1, 1)
    assert got[1]["day"] == dt.date(9999, 12, 31) and got[0]["big"] == 9007199254740993
    assert batches[0].schema.field("at_tz").type == pa.timestamp("us", tz="UTC")


def test_unsupported_types_fall_back(pg_conn: Any) -> None:
    from pyspark.sql.types import BinaryType, DoubleType, IntegerType, StructField

    assert snapshot_copy.arrow_supported([StructField("a", IntegerType())])
    assert not snapshot_copy.arrow_supported(
        [StructField("a", IntegerType()), StructField("b", DoubleType())]
    )
    assert not snapshot_copy.arrow_supported([StructField("b", BinaryType())])


def test_with_constants_adds_metadata_in_schema_order() -> None:
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import IntegerType, StructField, StructType

    schema = StructType([StructField("id", IntegerType()), *META_FIELDS])
    target = to_arrow_schema(schema, timezone="UTC")
    batch = pa.RecordBatch.from_arrays([pa.array([1, 2], pa.int32())], names=["id"])
    now = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    out = snapshot_copy.with_constants(
        batch,
        target,
        {"_op": "snapshot", "_lsn": 7, "_commit_ts": now, "_seq": (7 << 20) - 1, "_unchanged_cols": []},
    )
    assert out.schema == target
    assert out.to_pylist() == [
        {
            "id": i,
            "_op": "snapshot",
            "_lsn": 7,
            "_commit_ts": now,
            "_seq": (7 << 20) - 1,
            "_unchanged_cols": [],
        }
        for i in (1, 2)
    ]
