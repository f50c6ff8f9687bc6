"""The runtime's test set-up: one Spark session for the run (the pytest plugin's `localdlt_spark`), and a
`pipeline` to write and run small pipeline files in."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from localdlt import UpdateResult
from pipeline_run import PipelineRun


@pytest.fixture(scope="session")
def spark(localdlt_spark: Any) -> Any:
    """The session of localdlt's pytest plugin (`localdlt.testing`), shared with its fixtures."""
    return localdlt_spark


@pytest.fixture
def pipeline(spark: Any, tmp_path: Path) -> PipelineRun:
    return PipelineRun(spark, tmp_path)


@pytest.fixture
def flow_metrics() -> Callable[[UpdateResult, str], Any]:
    return lambda result, flow: result.flows[flow].metrics
