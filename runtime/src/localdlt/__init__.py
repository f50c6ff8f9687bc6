"""A local runtime for Databricks declarative pipelines (`import dlt`, `from pyspark import pipelines as dp`)
on Spark and Delta Lake.

    from localdlt import run_update
    result = run_update(["pipelines/"], storage="var/pipeline")

Its public API: the names below, the modules `localdlt.bundle` (pipelines of a Databricks bundle),
`localdlt.monitoring` (Databricks' monitoring queries over the event log) and `localdlt.testing` (the pytest
plugin), and the `localdlt` command (`localdlt.cli`). Knows nothing about any particular pipeline; see
`localdlt.api` for the `dlt` surface.
"""

from localdlt.errors import (
    CdcError,
    DefinitionError,
    ExpectationViolation,
    FlowError,
    PipelineError,
    PipelineLoadError,
    UnsupportedParameterError,
    UpdateFailed,
)
from localdlt.progress import ConsoleProgress
from localdlt.runner import run_update
from localdlt.session import get_spark, jit_mode
from localdlt.update_types import FlowOutcome, UpdateOptions, UpdateResult

__all__ = [
    "CdcError",
    "ConsoleProgress",
    "DefinitionError",
    "ExpectationViolation",
    "FlowError",
    "FlowOutcome",
    "PipelineError",
    "PipelineLoadError",
    "UnsupportedParameterError",
    "UpdateFailed",
    "UpdateOptions",
    "UpdateResult",
    "get_spark",
    "jit_mode",
    "run_update",
]
