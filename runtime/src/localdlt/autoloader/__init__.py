"""Databricks Auto Loader (`spark.readStream.format("cloudFiles")`) over local folders.

`cloudFiles.format` (csv, json, parquet, orc, text, binaryFile) picks Spark's file stream source; the
format's own options (header, delimiter, multiLine, ...) pass through. Without a `.schema(...)` the schema is
inferred from the files (CSV and JSON columns as strings unless `cloudFiles.inferColumnTypes`), with
`cloudFiles.schemaHints` applied, and kept in `cloudFiles.schemaLocation` with its evolutions. New columns
follow `cloudFiles.schemaEvolutionMode`:

- addNewColumns (default without a schema): the schema gains them. Databricks fails the stream once and its
  retry picks them up; locally the update that first sees them picks them up without failing.
- rescue: the schema never changes; new columns go to the rescued data column.
- failOnNewColumns: the flow fails, naming the columns, until the schema or the files change.
- none (default with a schema): new columns are ignored; no rescued data column unless `rescuedDataColumn`.

Files are inspected for new columns when the stream starts (each update), only those not inspected before.
Without `cloudFiles.schemaLocation` the schema is kept per input and options in the pipeline's storage
(schemas.default_location: `<storage>/system/autoloader/`).

The rescued data column (`_rescued_data` unless `rescuedDataColumn` names another) is added when the
schema is inferred (except in mode none) and in mode rescue: a JSON object of the values that do not fit their column's type
and of the columns the schema lacks, with `_file_path`.

Not supported locally: file notifications (cloudFiles.useNotifications and the queue options),
cloudFiles.includeExistingFiles=false, cloudFiles.allowOverwrites, nested schema hints (`a.b INT`), new
columns in files that arrive while a stream runs (those files' new columns are dropped; the next update
inspects them and evolves the schema for later files), and CSV files whose columns differ in order (CSV columns are matched by position, as Spark
does; new columns must come last).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from localdlt.autoloader import schemas
from localdlt.autoloader.frames import stream
from localdlt.autoloader.schemas import AutoLoaderError

FORMATS = {"csv": "csv", "json": "json", "parquet": "parquet", "orc": "orc", "text": "text"}
FORMATS["binaryfile"] = "binaryFile"
FIXED_SCHEMA = ("text", "binaryFile")  # formats whose schema is the format's own
MODES = {m.lower(): m for m in ("addNewColumns", "rescue", "failOnNewColumns", "none")}
RESCUED = "_rescued_data"
PREFIX = "cloudfiles."


def stream_reader(session: SparkSession) -> StreamReader:
    """`session.readStream`, where `format("cloudFiles")` is Auto Loader."""
    return StreamReader(session)


class StreamReader:
    """Spark's DataStreamReader, recording format, options and schema so that `load` of the `cloudFiles`
    format can be served here; every other format goes to Spark unchanged."""

    def __init__(self, session: SparkSession) -> None:
        self._session = session
        self._reader = session.readStream
        self._format: str | None = None
        self._options: dict[str, str] = {}
        self._schema: StructType | str | None = None

    def format(self, source: str) -> StreamReader:
        self._format = source
        self._reader = self._reader.format(source)
        return self

    def option(self, key: str, value: Any) -> StreamReader:
        self._options[key] = _text(value)
        self._reader = self._reader.option(key, value)
        return self

    def options(self, **options: Any) -> StreamReader:
        for key, value in options.items():
            self.option(key, value)
        return self

    def schema(self, schema: StructType | str) -> StreamReader:
        self._schema = schema
        self._reader = self._reader.schema(schema)
        return self

    def load(
        self, path: str | None = None, format: str | None = None, schema: Any = None, **options: Any
    ) -> DataFrame:
        if format is not None:
            self.format(format)
        if schema is not None:
            self.schema(schema)
        self.options(**options)
        if (self._format or "").lower() != "cloudfiles":
            return self._reader.load(path) if path is not None else self._reader.load()
        if path is None:
            raise AutoLoaderError(
                "Auto Loader: load() needs the input path (format('cloudFiles')...load(path))."
            )
        return AutoLoader(self._session, self._options, self._schema).load(path)

    def __getattr__(self, name: str) -> Any:  # table(), csv(), json(), ... : Spark's own
        return getattr(self._reader, name)


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass
class AutoLoader:
    spark: SparkSession
    options: dict[str, str]
    user_schema: StructType | str | None

    def _cloud(self, name: str, default: str | None = None) -> str | None:
        return self._lookup(PREFIX + name.lower(), default)

    def _lookup(self, key: str, default: str | None = None) -> str | None:
        return next((v for k, v in self.options.items() if k.lower() == key), default)

    def load(self, path: str) -> DataFrame:
        fmt = self._format()
        passthrough = {k: v for k, v in self.options.items() if not k.lower().startswith(PREFIX)}
        passthrough = {k: v for k, v in passthrough.items() if k.lower() != "rescueddatacolumn"}
        max_files = self._cloud("maxFilesPerTrigger")
        if max_files:
            passthrough["maxFilesPerTrigger"] = max_files
        lowered = {k.lower(): v for k, v in passthrough.items()}
        files = schemas.list_files(path, lowered)
        if "recursivefilelookup" not in lowered and not any("=" in Path(f).parent.name for f in files):
            passthrough["recursiveFileLookup"] = "true"  # Auto Loader reads subfolders; Spark only partitions
        if fmt in FIXED_SCHEMA:
            return stream(self.spark, fmt, path, passthrough, None)
        user = schemas.parse_schema(self.user_schema) if self.user_schema is not None else None
        mode = self._mode(user is not None)
        rescued_by_default = mode == "rescue" or (user is None and mode != "none")
        rescue = self._lookup("rescueddatacolumn") or (RESCUED if rescued_by_default else None)
        if user is not None:
            schema, observed = self._given(user, fmt, files, passthrough, mode, rescue, path)
        else:
            schema, observed = self._inferred(fmt, files, passthrough, mode, path)
        if rescue is not None and schemas.find(schema, rescue) is not None:
            schema = StructType([f for f in schema.fields if f.name.lower() != rescue.lower()])
        return stream(self.spark, fmt, path, passthrough, schema, observed, rescue)

    def _format(self) -> str:
        given = self._cloud("format")
        if not given:
            raise AutoLoaderError(
                "Auto Loader: set cloudFiles.format (csv, json, parquet, orc, text, binaryFile)."
            )
        fmt = FORMATS.get(given.lower())
        if fmt is None:
            raise AutoLoaderError(
                f"Auto Loader: cloudFiles.format '{given}' is not supported locally; use one of csv, json, "
                "parquet, orc, text, binaryFile."
            )
        return fmt

    def _mode(self, given_schema: bool) -> str:
        value = self._cloud("schemaEvolutionMode") or ("none" if given_schema else "addNewColumns")
        mode = MODES.get(value.lower())
        if mode is None:
            raise AutoLoaderError(
                f"Auto Loader: cloudFiles.schemaEvolutionMode '{value}' is not one of {', '.join(MODES.values())}."
            )
        return mode

    def _infer(self, fmt: str, files: list[str], options: dict[str, str]) -> StructType:
        # the CSV reader's own `inferSchema` (Databricks' tutorials set it) counts as inferColumnTypes
        given = self._cloud("inferColumnTypes") or self._lookup("inferschema") or "false"
        infer_types = given.lower() == "true"
        return schemas.infer(self.spark, fmt, files, options, infer_types)

    def _inferred(
        self, fmt: str, files: list[str], options: dict[str, str], mode: str, path: str
    ) -> tuple[StructType, StructType]:
        """The schema (and every column seen) from the schema location, evolved by the files not inspected yet."""
        hints = schemas.parse_hints(self._cloud("schemaHints"))
        location = schemas.SchemaLocation(
            self._cloud("schemaLocation") or schemas.default_location(self.spark, path, self.options)
        )
        stored = location.latest()
        if stored is None:
            if not files:
                raise AutoLoaderError(
                    f"Auto Loader: cannot infer the schema of {fmt} files at '{path}': it holds no files yet. "
                    "Add files, or give the schema with .schema(...)."
                )
            observed = self._infer(fmt, files, options)
            location.save(schemas.with_hints(observed, hints), observed)
            location.add_inspected(files)
            return schemas.with_hints(observed, hints), observed
        schema, observed = stored
        inspected = location.inspected()
        fresh = [f for f in files if f not in inspected]
        if not fresh:
            return schemas.with_hints(schema, hints), observed
        added = schemas.new_columns(observed, self._infer(fmt, fresh, options))
        if added and mode == "failOnNewColumns":
            raise _new_columns_error(added, path)
        if added:
            observed = schemas.widened(observed, added)
            if mode == "addNewColumns":
                schema = schemas.with_hints(schemas.widened(schema, added), hints)
            location.save(schema, observed)
        location.add_inspected(fresh)
        return schemas.with_hints(schema, hints), observed

    def _given(
        self,
        user: StructType,
        fmt: str,
        files: list[str],
        options: dict[str, str],
        mode: str,
        rescue: str | None,
        path: str,
    ) -> tuple[StructType, StructType | None]:
        """A user's schema: the files are inspected only to rescue or refuse columns it lacks."""
        if mode == "addNewColumns":
            raise AutoLoaderError(
                "Auto Loader: cloudFiles.schemaEvolutionMode addNewColumns needs an inferred schema; drop "
                ".schema(...) (use cloudFiles.schemaHints) or choose rescue, failOnNewColumns or none."
            )
        if not files or (rescue is None and mode != "failOnNewColumns"):
            return user, None
        observed = self._infer(fmt, files, options)
        added = schemas.new_columns(user, observed)
        if added and mode == "failOnNewColumns":
            raise _new_columns_error(added, path)
        return user, schemas.widened(user, added)


def _new_columns_error(added: list[Any], path: str) -> AutoLoaderError:
    names = ", ".join(f.name for f in added)
    return AutoLoaderError(
        f"Auto Loader: new columns [{names}] in the files at '{path}' and cloudFiles.schemaEvolutionMode is "
        "failOnNewColumns: update the schema (or cloudFiles.schemaHints), or remove the files."
    )
