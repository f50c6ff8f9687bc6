"""A local runtime for Databricks declarative pipelines (`import dlt`) on Spark and Delta Lake.

    from localdlt import run_update
    result = run_update(["pipelines/"], storage="var/pipeline")

Knows nothing about any particular pipeline; see `localdlt.api` for the `dlt` surface.
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
from localdlt.runner import run_update
from localdlt.update_types import FlowOutcome, UpdateOptions, UpdateResult

__all__ = [
    "CdcError",
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
    "run_update",
]
