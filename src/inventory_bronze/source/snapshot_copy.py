"""A table's rows as Arrow record batches, read with `COPY (SELECT ...) TO STDOUT (FORMAT csv)` and parsed
by Arrow's CSV reader (C++, vectorised): the fast path of the change stream's initial snapshot.

Reading row by row through a cursor costs a Python conversion per value and a pickled row per tuple
(about 30 k rows/s per core here); COPY plus Arrow's parser runs near the floor of the server's own COPY,
and the executor hands whole batches to Spark.

`arrow_supported(fields)` says whether every field's Spark type has a CSV path; `copy_batches(conn,
schema, table, fields)` then yields record batches of exactly those fields, typed as
`pyspark.sql.pandas.types.to_arrow_schema` makes them (timestamps in UTC), with the same values the text
converters of `capture_types` give: timestamptz as the instant in UTC, +-infinity timestamps and dates as
the sentinels (9999-12-31 23:59:59.999999, 0001-01-01), numeric NaN / +-Infinity as NULL, booleans,
text (empty strings stay empty strings, NULL stays NULL). Other types (floats, bytea, arrays, ...) are not
supported: the caller reads those tables row by row. The connection's session must be prepared as
`capture_slot.prepare_session` does (UTC, ISO dates); the caller owns the transaction.

`with_constants(batch, schema, constants)` adds constant columns (the capture's metadata) and orders the
columns as `schema`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pyarrow import csv as pa_csv
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DecimalType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

if TYPE_CHECKING:
    import psycopg

BLOCK_BYTES = 4 << 20  # CSV bytes per record batch (about 30 k order rows)
_PLAIN = (BooleanType, IntegerType, LongType, ShortType, StringType)
_TS_MAX, _TS_MIN = "'9999-12-31 23:59:59.999999'::timestamp", "'0001-01-01 00:00:00'::timestamp"
_DATE_MAX, _DATE_MIN = "'9999-12-31'::date", "'0001-01-01'::date"


def arrow_supported(fields: Iterable[StructField]) -> bool:
    """Whether every field has a CSV path (else read the table row by row)."""
    kinds = (*_PLAIN, DecimalType, TimestampType, TimestampNTZType, DateType)
    return all(isinstance(f.dataType, kinds) for f in fields)


def _expression(field: StructField) -> str:
    """The SELECT expression whose CSV text Arrow parses into the field's value."""
    c = '"' + field.name.replace('"', '""') + '"'
    kind = field.dataType
    if isinstance(kind, DecimalType):
        return f"CASE WHEN {c} IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE {c} END"
    if isinstance(kind, TimestampType):
        return (
            f"CASE WHEN isfinite({c}) THEN {c} AT TIME ZONE 'UTC' "
            f"WHEN {c} > 'epoch' THEN {_TS_MAX} WHEN {c} < 'epoch' THEN {_TS_MIN} END"
        )
    if isinstance(kind, TimestampNTZType):
        return f"CASE WHEN isfinite({c}) THEN {c} WHEN {c} > 'epoch' THEN {_TS_MAX} WHEN {c} < 'epoch' THEN {_TS_MIN} END"
    if isinstance(kind, DateType):
        return f"CASE WHEN isfinite({c}) THEN {c} WHEN {c} > 'epoch' THEN {_DATE_MAX} WHEN {c} < 'epoch' THEN {_DATE_MIN} END"
    return c


def copy_statement(schema: str, table: str, fields: list[StructField]) -> str:
    ident = ".".join('"' + part.replace('"', '""') + '"' for part in (schema, table))
    columns = ", ".join(_expression(f) for f in fields)
    return f"COPY (SELECT {columns} FROM {ident}) TO STDOUT (FORMAT csv)"


class _CopyReader(io.RawIOBase):
    """A file over the blocks of a running COPY ... TO STDOUT."""

    def __init__(self, blocks: Iterator[Any]) -> None:
        self._blocks = blocks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._pending = memoryview(block)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _parse_schema(fields: list[StructField]) -> tuple[pa.Schema, pa.Schema]:
    """(what Arrow's CSV reader parses, what Spark expects)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    target = to_arrow_schema(StructType(fields), timezone="UTC")
    parsed = pa.schema(
        [pa.field(f.name, pa.timestamp("us") if pa.types.is_timestamp(f.type) else f.type) for f in target]
    )
    return parsed, target


def copy_batches(
    conn: psycopg.Connection, schema: str, table: str, fields: list[StructField]
) -> Iterator[pa.RecordBatch]:
    """The rows of `schema.table` (the given fields, in order) as record batches typed for Spark."""
    parsed, target = _parse_schema(fields)
    names = [f.name for f in fields]
    options = pa_csv.ConvertOptions(
        column_types=dict(zip(names, parsed.types, strict=True)),
        null_values=[""],
        true_values=["t"],
        false_values=["f"],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    with conn.cursor() as cur, cur.copy(copy_statement(schema, table, fields)) as copy:
        reader = pa_csv.open_csv(
            io.BufferedReader(_CopyReader(iter(copy)), buffer_size=1 << 20),
            read_options=pa_csv.ReadOptions(column_names=names, block_size=BLOCK_BYTES, use_threads=False),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=options,
        )
        for batch in reader:
            if batch.num_rows:
                yield pa.RecordBatch.from_arrays(
                    [col.cast(t.type) for col, t in zip(batch.columns, target, strict=True)], schema=target
                )


def with_constants(batch: pa.RecordBatch, schema: pa.Schema, constants: Mapping[str, Any]) -> pa.RecordBatch:
    """`batch` plus one constant column per entry of `constants`, columns ordered as `schema`."""
    n = batch.num_rows
    arrays = []
    for field in schema:
        if field.name in constants:
            value = constants[field.name]
            if pa.types.is_list(field.type) and value == []:
                offsets = pa.array([0] * (n + 1), type=pa.int32())
                arrays.append(pa.ListArray.from_arrays(offsets, pa.array([], type=field.type.value_type)))
            else:
                arrays.append(pa.array([value] * n, type=field.type))
        else:
            arrays.append(batch.column(field.name))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
