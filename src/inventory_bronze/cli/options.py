"""Small parsers shared by sub-commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from inventory_bronze import config
from inventory_bronze.config import BronzeConfig
from inventory_bronze.errors import ConfigError


def _number(text: str, kind: type[int] | type[float], what: str) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected {what}") from None


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    value = int(_number(text, int, "a whole number >= 0"))
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: must be >= 0")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a number >= 0."""
    value = _number(text, float, "a number >= 0")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text}: must be >= 0")
    return value


def scale(text: str) -> float:
    """An argparse type: a source volume factor, > 0 and <= 20 (1 = the seed's volumes)."""
    value = _number(text, float, "a number such as 1 or 0.01")
    if not 0 < value <= 20:
        raise argparse.ArgumentTypeError(f"{value:g}: must be > 0 and <= 20 (1 = the seed's volumes)")
    return value


def dirty_rate(text: str) -> float:
    """An argparse type: a fraction of rule-breaking rows, 0 to 0.5."""
    value = _number(text, float, "a fraction such as 0.02")
    if not 0 <= value <= 0.5:
        raise argparse.ArgumentTypeError(f"{value:g}: must be between 0 and 0.5")
    return value


def storage_folder(text: str) -> Path:
    """An argparse type: a pipelines' storage folder, existing or to be created, never a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file, not a folder; choose a folder for the storage")
    return path


def _local_project() -> Any | None:
    """inventory_devkit.project where the checkout's local tools are installed, else None (a job on
    Databricks runs the deployed wheel, which names its catalog, schema and configuration instead)."""
    try:
        from inventory_devkit import project
    except ModuleNotFoundError:
        return None
    return project


def local_storage() -> Path | None:
    """Where local runs keep their pipelines' tables (var/pipelines of the checkout); None without the
    local tools."""
    project = _local_project()
    return None if project is None else project.VAR / "pipelines"


def config_path(path: str | Path | None) -> Path:
    """`path` (--config), else the checkout's conf/tables.yml; a job on Databricks passes the deployed one
    (${workspace.file_path}/conf/tables.yml)."""
    if path is not None:
        return Path(path)
    project = _local_project()
    if project is None:
        raise ConfigError("--config is required here: name the bronze configuration (conf/tables.yml).")
    return project.CONFIG_PATH


def bronze_config(path: str | Path | None) -> BronzeConfig:
    """The configuration at `config_path(path)`, read once per process."""
    return config.load_once(config_path(path))
