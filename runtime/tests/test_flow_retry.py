"""Flow retries (`pipelines.maxFlowRetryAttempts`): a flow failing for a reason that may pass runs again and
the update succeeds; a failure that would repeat is not retried; the event log shows every attempt."""

from __future__ import annotations

import pytest

from localdlt.errors import DefinitionError, ExpectationViolation
from localdlt.flowretry import backoff_seconds, is_retryable, max_flow_retries

# a flow whose source fails in its first `fails` runs with the given error, then answers: the failure is
# raised while the flow runs (in a Python UDF, as a flaky source would), not while the pipeline is analysed
FLAKY = """
from pathlib import Path

ATTEMPTS = Path({attempts!r})


@F.udf("long")
def fetch(n):
    if n == 0:  # one partition, row 0 first: one count per run of the query
        attempt = int(ATTEMPTS.read_text()) + 1 if ATTEMPTS.exists() else 1
        ATTEMPTS.write_text(str(attempt))
        if attempt <= {fails}:
            raise {error}
    return n


@dlt.table
def flaky():
    return spark.range(3, numPartitions=1).select(fetch("id").alias("n"))


@dlt.table
def steady():
    return spark.range(2)
"""
REFUSED = "ConnectionRefusedError(111, 'Connection refused')"


def _flow_statuses(pipeline, flow: str) -> list[str]:
    rows = (
        pipeline.events()
        .where(f"event_type = 'flow_progress' AND origin.flow_name = '{flow}'")
        .orderBy("sequence.control_plane_seq_no")
        .selectExpr("get_json_object(details, '$.flow_progress.status') AS status")
        .collect()
    )
    return [r.status for r in rows]


def test_a_transient_failure_is_retried_and_the_update_succeeds(pipeline):
    attempts = pipeline.root / "attempts"
    pipeline.write("flaky.py", FLAKY.format(attempts=str(attempts), fails=2, error=REFUSED))
    result = pipeline.run()
    assert result.ok, result.error
    assert int(attempts.read_text()) >= 3  # two failures, then success on the last allowed attempt
    assert pipeline.rows("flaky") == [(0,), (1,), (2,)]
    statuses = _flow_statuses(pipeline, "flaky")
    assert statuses.count("FAILED") == 2 and statuses[-1] == "COMPLETED"
    failed = pipeline.events().where(
        "event_type = 'flow_progress' AND origin.flow_name = 'flaky' "
        "AND get_json_object(details, '$.flow_progress.status') = 'FAILED'"
    )
    assert {r.level for r in failed.collect()} == {"WARN"}  # retried: a warning, not the update's error
    assert all("retry" in r.message for r in failed.collect())


def test_retries_are_bounded_by_the_setting(pipeline):
    attempts = pipeline.root / "attempts"
    pipeline.write("flaky.py", FLAKY.format(attempts=str(attempts), fails=5, error=REFUSED))
    result = pipeline.run(conf={"pipelines.maxFlowRetryAttempts": "1"})
    assert not result.ok
    assert attempts.read_text() == "2"
    assert result.flows["flaky"].status == "FAILED"
    assert result.flows["steady"].status == "COMPLETED"  # independent flows finish
    assert _flow_statuses(pipeline, "flaky")[-1] == "FAILED"


def test_a_failure_of_the_flows_own_code_is_not_retried(pipeline):
    attempts = pipeline.root / "attempts"
    pipeline.write(
        "flaky.py", FLAKY.format(attempts=str(attempts), fails=1, error="ValueError('no such product')")
    )
    result = pipeline.run()
    assert not result.ok
    assert attempts.read_text() == "1"
    assert "no such product" in str(result.flows["flaky"].error)


def test_setting_must_be_a_whole_number():
    assert max_flow_retries({}) == 2
    assert max_flow_retries({"pipelines.maxFlowRetryAttempts": "0"}) == 0
    with pytest.raises(DefinitionError, match="pipelines.maxFlowRetryAttempts"):
        max_flow_retries({"pipelines.maxFlowRetryAttempts": "two"})


def test_classification_follows_the_cause_chain():
    wrapped = RuntimeError("flow failed")
    wrapped.__cause__ = ConnectionResetError("peer reset")
    assert is_retryable(wrapped)
    assert is_retryable(RuntimeError("Python worker failed to connect back."))
    assert is_retryable(RuntimeError("Job aborted due to stage failure: ... java.io.OptionalDataException"))
    assert not is_retryable(ValueError("bad value"))
    violation = ExpectationViolation("f", "d", "e", "x > 0", "{x: -1}")
    violation.__cause__ = TimeoutError()
    assert not is_retryable(violation)  # a fail expectation fails the same way again
    assert [backoff_seconds(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 8]
