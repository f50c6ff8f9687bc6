"""PostgreSQL column types -> Spark types, and the server's text output -> Python values of those types.

Contract (also in the `pgcdc` source's documentation):

| PostgreSQL                          | Spark                  | notes                                      |
|-------------------------------------|------------------------|--------------------------------------------|
| smallint / integer / bigint / oid   | Short / Integer / Long |                                            |
| numeric(p, s), p <= 38              | DecimalType(p, s)      | exact; NaN and +-Infinity become NULL      |
| numeric without (p, s), or p > 38   | StringType             | exact text: no precision is guessed        |
| real / double precision             | Float / Double         | NaN, Infinity, -Infinity kept as floats    |
| boolean                             | BooleanType            |                                            |
| timestamptz                         | TimestampType          | instant, UTC                               |
| timestamp                           | TimestampNTZType       | wall-clock, no zone                        |
| date                                | DateType               |                                            |
| +-infinity timestamps / dates       | sentinels              | 9999-12-31 23:59:59.999999 / 0001-01-01    |
| uuid, json, jsonb, text, varchar... | StringType             | json/jsonb as the server prints them       |
| bytea                               | BinaryType             |                                            |
| time, interval, arrays, enums, ...  | StringType             | the server's text form                     |
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from inventory_bronze.source.capture_errors import CaptureError, DecodeError

UTC = dt.timezone.utc
MAX_TS = dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
MIN_TS = dt.datetime(1, 1, 1, 0, 0, 0)
MAX_DATE = dt.date(9999, 12, 31)
MIN_DATE = dt.date(1, 1, 1)

#: Metadata columns appended to every captured table's columns.
META_FIELDS: tuple[StructField, ...] = (
    StructField("_op", StringType(), False),
    StructField("_lsn", LongType(), False),
    StructField("_commit_ts", TimestampType(), True),
    StructField("_seq", LongType(), False),
    StructField("_unchanged_cols", ArrayType(StringType(), False), False),
)
META_NAMES = tuple(f.name for f in META_FIELDS)

Converter = Callable[[str], Any]


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type_oid: int
    typmod: int
    type_name: str
    spark_type: DataType
    convert: Converter
    is_key: bool = False
    nullable: bool = True


def _bool(text: str) -> bool:
    return text in ("t", "true")


def _float(text: str) -> float:
    return float(text)  # 'Infinity', '-Infinity', 'NaN' parse as floats


def _decimal(text: str) -> Decimal | None:
    if text in ("NaN", "Infinity", "-Infinity"):
        return None
    return Decimal(text)


def _ts_ntz(text: str) -> dt.datetime:
    if text == "infinity":
        return MAX_TS
    if text == "-infinity":
        return MIN_TS
    return dt.datetime.fromisoformat(text)


def _ts_tz(text: str) -> dt.datetime:
    if text == "infinity":
        return MAX_TS.replace(tzinfo=UTC)
    if text == "-infinity":
        return MIN_TS.replace(tzinfo=UTC)
    value = dt.datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _date(text: str) -> dt.date:
    if text == "infinity":
        return MAX_DATE
    if text == "-infinity":
        return MIN_DATE
    return dt.date.fromisoformat(text)


def _bytea(text: str) -> bytes:
    if text.startswith("\\x"):
        return bytes.fromhex(text[2:])
    raise ValueError("bytea not in hex output format (set bytea_output = 'hex')")


def _text(text: str) -> str:
    return text


# builtin type OID -> (Spark type, converter)
_BY_OID: dict[int, tuple[DataType, Converter]] = {
    16: (BooleanType(), _bool),
    17: (BinaryType(), _bytea),
    20: (LongType(), int),
    21: (ShortType(), int),
    23: (IntegerType(), int),
    26: (LongType(), int),
    700: (FloatType(), _float),
    701: (DoubleType(), _float),
    1082: (DateType(), _date),
    1114: (TimestampNTZType(), _ts_ntz),
    1184: (TimestampType(), _ts_tz),
}
NUMERIC_OID = 1700


def spark_type_for(type_oid: int, typmod: int) -> tuple[DataType, Converter]:
    if type_oid == NUMERIC_OID:
        if typmod >= 4:
            precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
            if 0 < precision <= 38 and 0 <= scale <= precision:
                return DecimalType(precision, scale), _decimal
        return StringType(), _text
    return _BY_OID.get(type_oid, (StringType(), _text))


_CATALOG_SQL = """
SELECT a.attname,
       CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END AS type_oid,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod,
       format_type(a.atttypid, a.atttypmod) AS type_name,
       NOT a.attnotnull AS nullable,
       COALESCE(a.attnum = ANY (i.indkey), false) AS is_key
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


def catalog_columns(conn: Any, schema: str, table: str) -> list[ColumnSpec]:
    """The table's columns with their Spark types, from the PostgreSQL catalog."""
    rows = conn.execute(_CATALOG_SQL, (schema, table)).fetchall()
    if not rows:
        raise CaptureError(
            f"Table {schema}.{table} does not exist (or has no columns) in the source database: check the "
            f"'table' option (schema.table, names as stored: e.g. tests.orders)."
        )
    specs = []
    for name, type_oid, typmod, type_name, nullable, is_key in rows:
        spark_type, convert = spark_type_for(int(type_oid), int(typmod))
        if name in META_NAMES:
            raise CaptureError(f"Column {schema}.{table}.{name} clashes with a capture metadata column.")
        specs.append(
            ColumnSpec(name, int(type_oid), int(typmod), type_name, spark_type, convert, is_key, nullable)
        )
    return specs


def spark_schema(columns: list[ColumnSpec]) -> StructType:
    """The table's columns (all nullable: deletes and truncates carry only the key or nothing) + metadata."""
    return StructType([StructField(c.name, c.spark_type, True) for c in columns] + list(META_FIELDS))


def converter_for_field(field: StructField) -> Converter:
    """A text -> value converter for a (user-given or catalog-derived) Spark field."""
    kind = field.dataType
    if isinstance(kind, DecimalType):
        return _decimal
    for spark_type, convert in _BY_OID.values():
        if type(spark_type) is type(kind):
            return convert
    return _text


def convert_value(convert: Converter, text: str, where: str) -> Any:
    try:
        return convert(text)
    except (ValueError, InvalidOperation, OverflowError) as err:
        raise DecodeError(
            f"Cannot convert the value of {where} to its Spark type ({type(err).__name__}): choose a wider "
            f"type by passing the stream a schema where this column is a string."
        ) from None
