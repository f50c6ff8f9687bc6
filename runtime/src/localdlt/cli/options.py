"""Argument types and the options `run` and `validate` share (a pipeline's sources and configuration)."""

from __future__ import annotations

import argparse
from pathlib import Path


def conf_entry(entry: str) -> str:
    """An argparse type: a `KEY=VALUE` entry."""
    key, sep, _ = entry.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{entry!r}: expected KEY=VALUE")
    return entry


def conf_dict(entries: list[str]) -> dict[str, str]:
    """`KEY=VALUE` strings (checked by `conf_entry`) to a dict; a later entry wins."""
    return {key.strip(): value for key, _, value in (e.partition("=") for e in entries)}


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be >= 1")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number >= 0") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text}: must be >= 0")
    return value


def storage_folder(text: str) -> Path:
    """An argparse type: a pipeline's storage folder, existing or to be created, never a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file, not a folder; choose a folder for the storage")
    return path


def add_source(parser: argparse.ArgumentParser) -> None:
    """PATH... or --bundle DIR --pipeline KEY [--target T] [--var NAME=VALUE], and --conf."""
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="pipeline source file or folder of .py files (or --bundle)"
    )
    bundle = parser.add_argument_group(
        "bundle", "take the pipeline from a Databricks Asset Bundle's resources.pipelines.KEY instead of PATH"
    )
    bundle.add_argument("--bundle", type=Path, metavar="DIR", help="the bundle root (holds databricks.yml)")
    bundle.add_argument("--pipeline", metavar="KEY", help="the pipeline's key under resources.pipelines")
    bundle.add_argument("--target", metavar="T", help="the bundle target (default: the default target)")
    bundle.add_argument(
        "--var",
        action="append",
        type=conf_entry,
        default=[],
        metavar="NAME=VALUE",
        help="bundle variable value, as `databricks bundle --var` (repeatable)",
    )
    parser.add_argument(
        "--conf",
        action="append",
        type=conf_entry,
        default=[],
        metavar="KEY=VALUE",
        help="pipeline configuration entry, read by code with spark.conf.get(KEY) (repeatable; over the "
        "bundle's configuration)",
    )
