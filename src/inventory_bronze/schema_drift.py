"""How a bronze table follows its source's schema: `schema_evolution` of the table in conf/tables.yml, the
modes of Auto Loader.

  add_new_columns (default)  a column the source added is taken: the change archive, the quarantine and the
                             bronze table gain it (NULL in the rows they held); in a table holding PII it
                             is encrypted until declared (BronzeTable.protect).
  rescue                     the table's schema does not change: the columns the source added are kept in
                             `_rescued_data`, a JSON object of their values (NULL when they are all NULL).
  fail                       a column the source added fails the update, naming it, before anything is
                             written.

In every mode a declared column the source dropped stays in bronze (rows written since hold NULL; the rules
judge it as NULL), and a type the source changed is left to the table: Delta's type widening takes a wider
type (int -> bigint, a decimal with more digits, ...), any other change fails the update naming the column.
The runtime reports each change of a table's schema in a WARN `schema_change` event of the event log.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from functools import reduce
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from inventory_bronze.config import SchemaEvolution
from inventory_bronze.errors import SchemaDriftError

RESCUED = "_rescued_data"

# declared PostgreSQL type -> the Spark type the JDBC read gives it (preferTimestampNTZ)
_JDBC_TYPES = {
    "bigint": "bigint",
    "integer": "int",
    "smallint": "smallint",
    "boolean": "boolean",
    "date": "date",
    "text": "string",
    "jsonb": "string",
    "uuid": "string",
    "timestamp": "timestamp_ntz",
    "timestamptz": "timestamp",
    "double precision": "double",
    "real": "float",
}


def spark_type_of(type_: str) -> str:
    """The Spark type of a declared PostgreSQL column type (string when there is no closer one)."""
    t = type_.lower().replace(" ", "")
    if t.startswith(("numeric(", "decimal(")):
        return "decimal" + t[t.index("(") :]
    return _JDBC_TYPES.get(type_.lower(), "string")


def added_columns(columns: Iterable[str], declared: Sequence[str], own: Iterable[str]) -> list[str]:
    """Those of `columns` the source added since the table was declared: neither declared nor one of the
    pipeline's `own` columns (capture metadata and the like)."""
    known = {c.lower() for c in (*declared, *own, RESCUED)}
    return [c for c in columns if c.lower() not in known]


def follow_source(
    frame: DataFrame, table: str, mode: SchemaEvolution, declared: Sequence[str], own: Iterable[str] = ()
) -> DataFrame:
    """The source read shaped by the table's `schema_evolution` (see the module docstring)."""
    added = added_columns(frame.columns, declared, own)
    if mode is SchemaEvolution.add_new_columns:
        return frame
    if mode is SchemaEvolution.fail and added:
        raise SchemaDriftError(
            f"The source table of {table} has column(s) {', '.join(added)} that {table} does not declare, and "
            f"conf/tables.yml sets schema_evolution: fail for {table}. Declare them (source/schema.py), or set "
            "schema_evolution to add_new_columns or rescue, then run the update again."
        )
    if mode is SchemaEvolution.fail:
        return frame
    rescued = F.lit(None)
    if added:
        any_value = reduce(operator.or_, [F.col(_q(c)).isNotNull() for c in added])
        rescued = F.when(any_value, F.to_json(F.struct(*[F.col(_q(c)) for c in added])))
    return frame.withColumn(RESCUED, rescued.cast("string")).drop(*added)


def with_declared(frame: DataFrame, declared: Sequence[Any]) -> tuple[DataFrame, list[str]]:
    """`frame` with the declared columns the source dropped added back as NULL of their declared type (what
    the rules and metadata judge), and their names."""
    present = {c.lower() for c in frame.columns}
    dropped = [c for c in declared if c.name.lower() not in present]
    filled = frame.select("*", *[F.lit(None).cast(spark_type_of(c.type)).alias(c.name) for c in dropped])
    return filled, [c.name for c in dropped]


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
