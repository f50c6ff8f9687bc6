"""Flow retries, as Databricks does them: a flow that fails for a reason that may pass (the engine or an
external system: a Spark job, a Python worker that did not start in time, a connection, I/O) is run again,
up to `pipelines.maxFlowRetryAttempts` more times (default 2: three attempts in all), before the update
fails. Failures that would fail the same way again are not retried: the pipeline's definition, analysis
errors (an unknown column, a wrong type), a `fail` expectation, data an AUTO CDC flow must not apply.

Retrying is safe because every flow is idempotent on rerun: materialized views are overwritten, streaming
flows resume from their checkpoint, and AUTO CDC batches commit with Delta's transaction ids.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.errors import AnalysisException

from localdlt.errors import CdcError, DefinitionError, ExpectationViolation, causes

CONF_MAX_FLOW_RETRIES = "pipelines.maxFlowRetryAttempts"
DEFAULT_MAX_FLOW_RETRIES = 2
#: seconds before retry n (1-based): 1, 2, 4, ... capped
BACKOFF_CAP_SECONDS = 8.0

_DETERMINISTIC = (DefinitionError, ExpectationViolation, CdcError, AnalysisException)
# by name, so that optional drivers need not be importable here. Spark's own exception classes say
# nothing either way (a task failing on a bad row and a Python worker failing to start look alike): their
# text decides, below.
_TRANSIENT_NAMES = {
    "Py4JNetworkError",
    "OperationalError",  # psycopg / DB-API: connection lost, server shutting down
    "InterfaceError",
}
_TRANSIENT_TEXT = (
    "Python worker failed to connect back",
    "CANNOT_OPEN_SOCKET",
    "Connection refused",
    "Connection reset",
    "Connection timed out",
    "Timed out while waiting for the Python worker",
    # a task that could not be deserialized on the executor (the stream of a task's closure cut short):
    # seen now and then in concurrent CDC `_changes` flows on two cores, and gone on the next attempt
    "java.io.OptionalDataException",
)


def max_flow_retries(conf: Mapping[str, str]) -> int:
    """`pipelines.maxFlowRetryAttempts` from the pipeline configuration (default 2)."""
    raw = conf.get(CONF_MAX_FLOW_RETRIES)
    if raw is None:
        return DEFAULT_MAX_FLOW_RETRIES
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = -1
    if value < 0:
        raise DefinitionError(
            f"The pipeline setting {CONF_MAX_FLOW_RETRIES}={raw!r} must be a whole number >= 0 "
            f"(retries of a failed flow; default {DEFAULT_MAX_FLOW_RETRIES})."
        )
    return value


def is_retryable(err: BaseException) -> bool:
    """True when the failure may pass on another attempt (see the module's docstring)."""
    chain = list(causes(err))
    if any(isinstance(e, _DETERMINISTIC) for e in chain):
        return False
    for e in chain:
        if isinstance(e, OSError | ConnectionError | TimeoutError):
            return True
        if type(e).__name__ in _TRANSIENT_NAMES or any(t in str(e) for t in _TRANSIENT_TEXT):
            return True
    return False  # an error of the flow's own code fails the same way again


def backoff_seconds(retry: int) -> float:
    """Seconds to wait before retry `retry` (1-based)."""
    return min(BACKOFF_CAP_SECONDS, float(2 ** (retry - 1)))
