"""Validate a pipeline without running it: load every file and analyse the whole graph, collecting every
error instead of stopping at the first (as Databricks' validate update and `spark-pipelines dry-run`).
Nothing is written: no flow runs, no table, checkpoint or event log is created."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

import localdlt.loader as loader
from localdlt.analysis import Analyzer
from localdlt.errors import DefinitionError, PipelineError
from localdlt.livetables import live_tables
from localdlt.runner import STORAGE_CONF, configured, existing_schema
from localdlt.sessionproxy import SessionProxy
from localdlt.storage import Storage


@dataclass
class Validation:
    errors: list[str] = field(default_factory=list)
    datasets: int = 0
    flows: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        return f"{self.datasets} datasets, {self.flows} flows"


def validate(
    paths: Iterable[str | Path],
    conf: Mapping[str, str] | None = None,
    spark: SparkSession | None = None,
    storage: str | Path | None = None,
) -> Validation:
    """Every definition error of the pipeline made of `paths`, one line each. `storage` (optional, read
    only) gives the schemas of tables written before, as an update would see them."""
    from localdlt.session import get_spark

    spark = spark or get_spark()
    settings = {str(k): str(v) for k, v in (conf or {}).items()}
    store = None
    if storage is not None and Path(storage).is_dir():
        store = Storage(Path(storage).expanduser().resolve())
        settings.setdefault(STORAGE_CONF, str(store.root))
    errors: list[DefinitionError] = []
    result = Validation()
    proxy = SessionProxy(spark)
    with configured(spark, settings), _quiet_query_context():
        try:
            graph = loader.load(paths, proxy, errors)
            with live_tables(set(graph.datasets)):
                existing: Any = existing_schema(spark, store, graph) if store else (lambda name: None)
                Analyzer(spark, graph, existing, proxy).run()
            result.datasets, result.flows = len(graph.datasets), len(graph.flows)
        except PipelineError as err:  # not a definition error of one dataset: e.g. no source file
            errors.append(err)  # type: ignore[arg-type]
    result.errors = [" ".join(str(e).split()) for e in dict.fromkeys(errors)]
    return result


@contextmanager
def _quiet_query_context() -> Iterator[None]:
    """PySpark logs every analysis error with its query context (a JSON line with the Java stack) as it
    raises it; validation reports each such error as one line of its own instead."""
    loggers = [logging.getLogger(n) for n in ("DataFrameQueryContextLogger", "SQLQueryContextLogger")]
    before = [logger.disabled for logger in loggers]
    for logger in loggers:
        logger.disabled = True
    try:
        yield
    finally:
        for logger, disabled in zip(loggers, before, strict=True):
            logger.disabled = disabled
