"""Shared by the reliability tests: one table's datasets run through the local runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inventory_bronze import bronze, config


def table_libraries(table: str) -> tuple[list[Path], dict[str, str]]:
    """The pipeline file of one table (`bz_<table>.py`, all its datasets), and its pipeline's configuration
    from the bundle."""
    from inventory_devkit.local_run import pipeline_specs

    target = config.target_name(table)
    spec = next(s for s in pipeline_specs() if target in s.tables())
    return [p for p in spec.libraries if p.stem == target], spec.configuration


def table_update(
    spark: Any, table: str, storage: Path, config_path: Path | None = None, **options: Any
) -> Any:
    """One update of one table's datasets on `storage` (UpdateOptions from `options`), with the bronze
    configuration at `config_path` if given."""
    from localdlt import ConsoleProgress, UpdateOptions, run_update

    libraries, conf = table_libraries(table)
    if config_path is not None:
        conf = {**conf, bronze.CONF_CONFIG_PATH: str(config_path)}
    return run_update(
        libraries,
        storage,
        conf=conf,
        spark=spark,
        options=UpdateOptions(**options),
        progress=ConsoleProgress(quiet=True),
    )
