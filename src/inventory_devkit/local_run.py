"""Run the bundle's pipelines with the local runtime (used by `run` and `demo`)."""

from __future__ import annotations

import threading
from pathlib import Path

from pyspark.sql import SparkSession

from inventory_bronze import config as cfg
from inventory_bronze import pii, pii_tables, redaction
from inventory_bronze.errors import ConfigError
from inventory_bronze.source.capture_slot import ensure_capture
from inventory_bronze.spark_session import get_spark
from inventory_devkit import project
from inventory_devkit.bundle import PipelineSpec, load_bundle
from localdlt import ConsoleProgress, UpdateOptions, UpdateResult, environment, run_update


def pipeline_specs(target: str = "dev", only: list[str] | None = None) -> list[PipelineSpec]:
    bundle = load_bundle(project.ROOT, target)
    specs = list(bundle.pipelines.values())
    if only:
        unknown = sorted(set(only) - {s.key for s in specs})
        if unknown:
            raise ConfigError(f"No pipeline {unknown} in the bundle; pipelines: {[s.key for s in specs]}.")
        specs = [s for s in specs if s.key in only]
    # the triggered pipeline first: its tables are the CDC tables' references
    return sorted(specs, key=lambda s: s.continuous)


def _ensure_capture(specs: list[PipelineSpec], progress: ConsoleProgress) -> None:
    """The replication slots and publications the pipelines read: created where missing (a fresh server),
    so that the first update takes each captured table's snapshot and then its changes."""
    for path in sorted({spec.config_path for spec in specs}):
        tables = cfg.load_once(path).capture_tables
        for line in ensure_capture(tables) if tables else ():
            if line.endswith(" created"):
                progress.line(f"capture: {line}")


def install_environment(spec: PipelineSpec) -> None:
    """What the pipeline resource's `environment.dependencies` install on Databricks, here
    (`localdlt.environment`): a local project is put on the path (a no-op for this checkout, which
    scripts/setup installs); any other requirement must be installed already (pyproject.toml, scripts/setup)."""
    try:
        environment.install_environment(spec.dependencies, spec.key)
    except environment.DependencyError as err:
        raise ConfigError(f"{err} Add it to pyproject.toml and run scripts/setup.") from None


def _check_pii_key(
    spark: SparkSession, storage: Path, spec: PipelineSpec, full_refresh: bool, progress: ConsoleProgress
) -> None:
    """Before a pipeline writes: its PII tables were written with the key it will use (pii_tables)."""
    config = cfg.load_once(spec.config_path)
    if not pii_tables.protected_datasets(config):
        return
    keys = pii.load_keys(spec.configuration.get(pii.PIPELINE_CONF_KEY))
    recorded = pii_tables.check_storage(spark, storage, config, keys, full_refresh=full_refresh)
    if recorded:
        progress.line(f"  PII key {keys.fingerprint} recorded on {', '.join(recorded)}")


def run_pipelines(
    storage: Path,
    target: str = "dev",
    only: list[str] | None = None,
    full_refresh: bool = False,
    continuous: bool = False,
    max_seconds: float | None = None,
    quiet: bool = False,
    stop: threading.Event | None = None,
) -> dict[str, UpdateResult]:
    """One update of each pipeline (`only`: those keys), the triggered one first; a continuous one runs
    for `max_seconds` or until `stop` is set."""
    specs = pipeline_specs(target, only)
    for spec in specs:  # before Spark starts: its Python workers inherit the path
        install_environment(spec)
    spark = get_spark("inventory-bronze")
    _ensure_capture(specs, ConsoleProgress(quiet=quiet))
    results: dict[str, UpdateResult] = {}
    for spec in specs:
        options = UpdateOptions(
            full_refresh=full_refresh,
            continuous=continuous and spec.continuous,
            max_seconds=max_seconds if continuous and spec.continuous else None,
            stop_event=stop,
        )
        progress = ConsoleProgress(quiet=quiet)
        progress.line(f"pipeline {spec.key} ({len(spec.libraries)} source files)")
        _check_pii_key(spark, storage / spec.key, spec, full_refresh, progress)
        results[spec.key] = run_update(
            spec.libraries,
            storage / spec.key,
            conf=spec.configuration,
            options=options,
            pipeline_name=spec.name,
            spark=spark,
            progress=progress,
            redact=redaction.redact,  # row values (PII) stay out of the event log's and console's errors
        )
        if quiet:
            progress.quiet = False
            progress.summary(results[spec.key])
    return results
