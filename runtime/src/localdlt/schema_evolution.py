"""A table follows the schema of what its flows write, as Databricks' streaming tables and AUTO CDC targets do:

- a column the flow writes that the table lacks is added (NULL in the rows it holds);
- a column whose type the flow widened is widened with Delta's type widening (`delta.enableTypeWidening`),
  the changes schema evolution makes on its own: byte -> short -> int -> long, float -> double, a decimal
  with more digits (scale not reduced), date -> timestamp_ntz (integers never become decimal or double by
  themselves); any other type change fails, naming the dataset and the column (the rows held cannot take
  it: a full refresh of the table can);
- a column of the table that the flow no longer writes is kept: appended rows have it NULL; AUTO CDC
  targets treat it as a MERGE does (rows inserted from then on NULL, rows updated keep their value).

`evolve` applies that before a flow's first batch and returns what changed; the executor reports it in a
WARN `schema_change` event; `conform_batch` gives each batch the columns the flow no longer writes, as
NULL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from localdlt.cdc.common import quote
from localdlt.errors import FlowError

_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)


def widens(old: T.DataType, new: T.DataType) -> bool:
    """True when Delta's type widening takes a column of type `old` to `new` (see the module docstring)."""
    if isinstance(old, _INTEGRAL) and isinstance(new, _INTEGRAL):
        return _INTEGRAL.index(type(new)) > _INTEGRAL.index(type(old))
    if isinstance(old, T.FloatType) and isinstance(new, T.DoubleType):
        return True
    if isinstance(old, T.DecimalType) and isinstance(new, T.DecimalType):
        grows = new.precision > old.precision or new.scale > old.scale
        return grows and new.scale >= old.scale and new.precision - new.scale >= old.precision - old.scale
    return isinstance(old, T.DateType) and isinstance(new, T.TimestampNTZType)


@dataclass
class SchemaChange:
    """What `evolve` changed: columns added and widened (`name type`, `name old -> new`), and the table's
    columns the flow no longer writes."""

    added: list[str] = field(default_factory=list)
    widened: list[str] = field(default_factory=list)
    missing: list[T.StructField] = field(default_factory=list)

    @property
    def missing_names(self) -> list[str]:
        return [f.name for f in self.missing]


class SchemaEvolutionError(FlowError):
    """A flow writes a column whose type its table cannot take."""


def evolve(
    spark: SparkSession,
    path: str,
    wanted: T.StructType,
    *,
    flow: str,
    dataset: str,
    keep: frozenset[str] = frozenset(),
) -> SchemaChange:
    """Make the Delta table at `path` able to take rows of schema `wanted` (columns named in `keep` are the
    runtime's own and never reported missing)."""
    table = f"delta.{quote(path)}"
    current = spark.read.format("delta").load(path).schema
    have = {f.name.lower(): f for f in current.fields}
    change = SchemaChange()
    retyped: list[tuple[str, T.DataType]] = []  # (the table's column, its wider type)
    for f in wanted.fields:
        old = have.get(f.name.lower())
        if old is None:
            change.added.append(f"{quote(f.name)} {f.dataType.simpleString()}")
        elif old.dataType.simpleString() == f.dataType.simpleString():
            continue
        elif widens(old.dataType, f.dataType):
            retyped.append((old.name, f.dataType))
            change.widened.append(
                f"{quote(f.name)} {old.dataType.simpleString()} -> {f.dataType.simpleString()}"
            )
        else:
            raise SchemaEvolutionError(
                flow,
                f"Column '{f.name}' of '{dataset}' is {old.dataType.simpleString()}, but flow '{flow}' now "
                f"writes {f.dataType.simpleString()}: not a change Delta's type widening allows (a narrower "
                "or another type). Restore the column's type in the source, or run a full refresh of "
                f"'{dataset}' to rebuild it with the new type.",
            )
    wanted_names = {f.name.lower() for f in wanted.fields}
    change.missing = [f for f in current.fields if f.name.lower() not in wanted_names and f.name not in keep]
    if change.added:
        spark.sql(f"ALTER TABLE {table} ADD COLUMNS ({', '.join(change.added)})")
    if retyped:
        ntz = any(isinstance(t, T.TimestampNTZType) for _, t in retyped)  # the table must allow it first
        feature = ", 'delta.feature.timestampNtz' = 'supported'" if ntz else ""
        spark.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ('delta.enableTypeWidening' = 'true'{feature})")
        for name, wider in retyped:
            spark.sql(f"ALTER TABLE {table} ALTER COLUMN {quote(name)} TYPE {wider.simpleString()}")
    return change


def conform_batch(df: DataFrame, missing: list[T.StructField]) -> DataFrame:
    """`df` with the table's columns it no longer has (`SchemaChange.missing`) as NULL: kept, not guessed."""
    if not missing:
        return df
    return df.select("*", *[F.lit(None).cast(f.dataType).alias(f.name) for f in missing])
