"""localdlt's pytest plugin (registered through the `pytest11` entry point): fixtures for pipeline authors."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def localdlt_spark() -> Iterator[Any]:
    """The Spark session every test of the run shares (starting one takes seconds)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from localdlt.session import get_spark

    yield get_spark("localdlt-tests", {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"})
