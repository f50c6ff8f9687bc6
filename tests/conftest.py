"""Shared test set-up: one Spark session for the whole run; fixture modules in tests/fixtures/ load
automatically (each owns one kind of resource: spark.py, postgres.py, ...)."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}"
    for p in (Path(__file__).parent / "fixtures").glob("*.py")
    if p.stem != "__init__"
)
