"""Auto Loader's schema over local folders: the files of an input path, schema inference, schema hints and
the schema location (the inferred schema, its evolutions, and which files were inspected for it).

The schema location holds `_schemas/<n>` (one JSON document per schema version: `schema`, the columns the
stream returns, and `observed`, every column seen in the files, which the rescued data column draws on)
and `_localdlt_inspected.json` (the files already inspected, so that each update infers only new files).
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import StringType, StructField, StructType, _parse_datatype_string

from localdlt.errors import PipelineError


class AutoLoaderError(PipelineError):
    """An Auto Loader input is misconfigured or its files do not fit (the flow's error names the flow)."""


SCHEMAS_DIR = "_schemas"
INSPECTED_FILE = "_localdlt_inspected.json"
DEFAULT_LOCATION_ROOT = "localdlt-autoloader"
GLOB_CHARS = set("*?[{")


def local_path(path: str) -> str:
    """`path` without a `file:` scheme (Auto Loader paths here are local folders)."""
    if path.startswith("file://"):
        return path[len("file://") :]
    if path.startswith("file:"):
        return path[len("file:") :]
    return path


def _hidden(name: str) -> bool:
    return name.startswith(("_", "."))


def list_files(path: str, reader_options: Mapping[str, str]) -> list[str]:
    """The data files under `path` (a folder, a file or a glob), as Spark's file source reads them: in
    subfolders too, hidden names (`_`, `.`) skipped, `pathGlobFilter` applied to file names. Raises when
    the path does not exist."""
    local = local_path(path)
    name_filter = reader_options.get("pathglobfilter")
    if GLOB_CHARS & set(local):
        roots = sorted(glob.glob(local))
    elif os.path.exists(local):
        roots = [local]
    else:
        raise AutoLoaderError(f"Auto Loader: the input path '{path}' does not exist.")
    files: list[str] = []
    for root in roots:
        if os.path.isfile(root):
            files.append(os.path.abspath(root))
            continue
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not _hidden(d))
            for name in sorted(names):
                if _hidden(name) or (name_filter and not fnmatch.fnmatch(name, name_filter)):
                    continue
                files.append(os.path.abspath(os.path.join(folder, name)))
    return files


def infer(
    spark: SparkSession, fmt: str, files: list[str], reader_options: Mapping[str, str], infer_types: bool
) -> StructType:
    """The schema of `files` as Auto Loader infers it: CSV and JSON columns as strings (nested JSON fields
    too) unless `infer_types`; Parquet and ORC keep their types, merged across files."""
    options = dict(reader_options)
    if fmt == "csv":
        options["inferSchema"] = "true" if infer_types else "false"
    elif fmt == "json" and not infer_types:
        options["primitivesAsString"] = "true"
    elif fmt in ("parquet", "orc"):
        options["mergeSchema"] = "true"
    try:
        return spark.read.format(fmt).options(**options).load(files).schema
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AutoLoaderError(
            f"Auto Loader could not infer the schema of {len(files)} {fmt} file(s): {first}"
        ) from err


def parse_schema(schema: StructType | str) -> StructType:
    if isinstance(schema, StructType):
        return schema
    parsed = _parse_datatype_string(schema)
    if not isinstance(parsed, StructType):
        raise AutoLoaderError(f"Auto Loader: the schema {schema!r} is not a list of columns.")
    return parsed


def parse_hints(hints: str | None) -> list[StructField]:
    """`cloudFiles.schemaHints` ("col TYPE, col2 TYPE") as columns."""
    if not hints or not hints.strip():
        return []
    try:
        return list(parse_schema(hints).fields)
    except AutoLoaderError:
        raise
    except Exception as err:
        first = str(err).strip().splitlines()[0]
        raise AutoLoaderError(
            f"Auto Loader: cloudFiles.schemaHints {hints!r} is not 'column TYPE, ...' (nested hints such as "
            f"'a.b INT' are not supported locally): {first}"
        ) from err


def find(schema: StructType, name: str) -> StructField | None:
    lower = name.lower()
    return next((f for f in schema.fields if f.name.lower() == lower), None)


def with_hints(schema: StructType, hints: list[StructField]) -> StructType:
    """`schema` with the hinted columns' types; hinted columns the files lack are added at the end."""
    fields = list(schema.fields)
    for hint in hints:
        index = next((i for i, f in enumerate(fields) if f.name.lower() == hint.name.lower()), None)
        if index is None:
            fields.append(StructField(hint.name, hint.dataType, True))
        else:
            fields[index] = StructField(fields[index].name, hint.dataType, True, fields[index].metadata)
    return StructType(fields)


def new_columns(known: StructType, seen: StructType) -> list[StructField]:
    return [f for f in seen.fields if find(known, f.name) is None]


def widened(schema: StructType, extra: Iterable[StructField]) -> StructType:
    return StructType(list(schema.fields) + [StructField(f.name, f.dataType, True) for f in extra])


def strings(schema: StructType) -> StructType:
    """`schema` with every top-level column as a string (how CSV and JSON are read before rescue)."""
    return StructType([StructField(f.name, StringType(), True) for f in schema.fields])


def default_location(spark: SparkSession, path: str, options: Mapping[str, str]) -> str:
    """Where the schema of an input without `cloudFiles.schemaLocation` is kept: in the pipeline's storage
    (`<storage>/system/autoloader/`, as Databricks keeps it in the pipeline's storage), per input and
    options (two flows reading one folder alike share it); outside a pipeline update, per `pipelines.id`
    under the temporary folder."""
    identity = json.dumps([os.path.abspath(local_path(path)), sorted(options.items())])
    key = hashlib.sha1(identity.encode()).hexdigest()[:16]
    storage = spark.conf.get("pipelines.storage", None)
    if storage:
        return str(Path(storage) / "system" / "autoloader" / key)
    pipeline = spark.conf.get("pipelines.id", None) or "default"
    return str(Path(tempfile.gettempdir()) / DEFAULT_LOCATION_ROOT / pipeline / key)


class SchemaLocation:
    """The versions of an input's schema and the files inspected for it, in a folder."""

    def __init__(self, location: str) -> None:
        self.root = Path(local_path(location))

    def _versions(self) -> list[int]:
        folder = self.root / SCHEMAS_DIR
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())

    def latest(self) -> tuple[StructType, StructType] | None:
        """The newest (schema, observed columns), or None before the first inference."""
        versions = self._versions()
        if not versions:
            return None
        doc = json.loads((self.root / SCHEMAS_DIR / str(versions[-1])).read_text())
        return _struct(doc["schema"]), _struct(doc["observed"])

    def save(self, schema: StructType, observed: StructType) -> None:
        versions = self._versions()
        number = versions[-1] + 1 if versions else 0
        doc = {"schema": schema.jsonValue(), "observed": observed.jsonValue()}
        _write(self.root / SCHEMAS_DIR / str(number), json.dumps(doc))

    def inspected(self) -> set[str]:
        path = self.root / INSPECTED_FILE
        return set(json.loads(path.read_text())["files"]) if path.exists() else set()

    def add_inspected(self, files: Iterable[str]) -> None:
        done = self.inspected() | set(files)
        _write(self.root / INSPECTED_FILE, json.dumps({"files": sorted(done)}))


def _struct(value: dict[str, Any]) -> StructType:
    return StructType.fromJson(value)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
