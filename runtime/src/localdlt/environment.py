"""A pipeline's `environment.dependencies`, locally: what Databricks installs into the pipeline's
environment must be importable here before Spark starts (its Python workers inherit PYTHONPATH)."""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from localdlt.errors import PipelineError


class DependencyError(PipelineError):
    """An `environment.dependencies` entry that is not installed here."""


def install_environment(dependencies: Iterable[str], pipeline: str = "") -> list[Path]:
    """Make each requirement line importable: a local project (`--editable DIR`, `DIR`, a folder with a
    pyproject.toml) is put on the path of this process and, through PYTHONPATH, of the Python workers of a
    Spark started after it; any other requirement must be installed already, else a `DependencyError`
    names it. Returns the folders put on the path."""
    added: list[Path] = []
    for line in dependencies:
        words = line.split()
        target = words[-1] if words else ""
        folder = Path(target)
        if folder.is_dir() and (folder / "pyproject.toml").is_file():
            entry = folder / "src" if (folder / "src").is_dir() else folder
            put_on_path(entry)
            added.append(entry.resolve())
            continue
        name = re.split(r"[\[<>=!~;\s]", target, maxsplit=1)[0]
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            owner = f"Pipeline {pipeline}: " if pipeline else ""
            raise DependencyError(
                f"{owner}environment dependency '{line}' is not installed here; install it into this Python "
                f"environment (pip install '{target}')."
            ) from None
    return added


def put_on_path(folder: Path) -> None:
    """`folder` first on sys.path and on $PYTHONPATH (read by Spark's Python workers when Spark starts)."""
    entry = str(folder.resolve())
    if entry not in sys.path:
        sys.path.insert(0, entry)
    workers = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if entry not in workers:
        os.environ["PYTHONPATH"] = os.pathsep.join([entry, *[w for w in workers if w]])
