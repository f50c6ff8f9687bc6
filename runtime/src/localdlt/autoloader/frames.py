"""The streaming DataFrame of an Auto Loader input: Spark's file stream source of the underlying format (so
the flow's checkpoint records which files were read, and each file is read once), then the rescued data
column: values that do not fit their column's type, and columns the schema does not have, as a JSON
object with the file's path (`{"col": "value", "_file_path": "file:/..."}`)."""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, MapType, StringType, StructField, StructType

from localdlt.autoloader.schemas import find, strings, widened

FILE_PATH_KEY = "_file_path"
TEXT_FORMATS = ("csv", "json")  # formats read as strings before rescue (they do not encode types)


def stream(
    spark: SparkSession,
    fmt: str,
    path: str,
    options: Mapping[str, str],
    schema: StructType | None,
    observed: StructType | None = None,
    rescue: str | None = None,
) -> DataFrame:
    """Files under `path` as a stream of `schema` (None: the format's fixed schema, e.g. text), plus the
    column `rescue` (if given) built from the `observed` columns the schema lacks and from type mismatches."""
    reader = spark.readStream.format(fmt).options(**options)
    if schema is None:
        return reader.load(path)
    if rescue is None:
        return reader.schema(schema).load(path)
    extra = [f for f in (observed or StructType()).fields if find(schema, f.name) is None]
    wanted = widened(schema, extra)
    read = wanted
    if observed is not None:  # columns in the files' order (CSV matches by position), with the files' types
        in_files = [f for f in observed.fields if find(wanted, f.name) is not None]
        read = StructType(in_files + [f for f in wanted.fields if find(observed, f.name) is None])
    if fmt in TEXT_FORMATS:
        read = strings(read)
    raw = reader.schema(read).load(path)
    columns: list[Column] = []
    entries: list[Column] = []
    for field in schema.fields:
        source = raw[_quoted(field.name)]
        raw_type = read[field.name].dataType
        typed = _typed(source, raw_type, field)
        columns.append(typed.alias(field.name))
        if raw_type != field.dataType:
            mismatch = F.when(source.isNotNull() & typed.isNull(), _as_string(source, raw_type))
            entries += [F.lit(field.name), mismatch]
    for field in extra:
        entries += [F.lit(field.name), _as_string(raw[_quoted(field.name)], read[field.name].dataType)]
    columns.append(_rescued(entries).alias(rescue))
    return raw.select(*columns)


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _typed(source: Column, raw_type: object, field: StructField) -> Column:
    if raw_type == field.dataType:
        return source
    if isinstance(raw_type, StringType) and isinstance(field.dataType, (StructType, ArrayType, MapType)):
        return F.from_json(source, field.dataType)
    return source.try_cast(field.dataType)


def _as_string(source: Column, raw_type: object) -> Column:
    if isinstance(raw_type, (StructType, ArrayType, MapType)):
        return F.to_json(source)
    return source.cast("string")


def _rescued(entries: list[Column]) -> Column:
    if not entries:
        return F.lit(None).cast("string")
    values = F.map_filter(F.create_map(*entries), lambda _key, value: value.isNotNull())
    path = F.create_map(F.lit(FILE_PATH_KEY), F.col("_metadata.file_path"))
    return F.when(F.size(values) > 0, F.to_json(F.map_concat(values, path)))
