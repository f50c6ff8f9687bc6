"""The runtime's test set-up: one Spark session for the run, and a `pipeline` to write and run small
pipeline files in."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localdlt import UpdateResult
from pipeline_run import PipelineRun


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from localdlt.session import get_spark

    yield get_spark("tests", {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"})


@pytest.fixture
def pipeline(spark: Any, tmp_path: Path) -> PipelineRun:
    return PipelineRun(spark, tmp_path)


@pytest.fixture
def flow_metrics() -> Callable[[UpdateResult, str], Any]:
    return lambda result, flow: result.flows[flow].metrics
