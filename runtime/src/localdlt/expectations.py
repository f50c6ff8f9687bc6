"""Expectations applied to a DataFrame in one pass, with Databricks' semantics:

- warn (`expect`): the row is kept and counted;
- drop (`expect_or_drop`): the row is removed before the write and counted;
- fail (`expect_or_fail`): the first failing row stops the job with an error naming the dataset, the
  expectation and the row, so nothing of the batch is committed.

A constraint that evaluates to NULL counts as a failure. Counting rides on the write itself
(`DataFrame.observe`), so no extra Spark job is needed.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F

from localdlt.errors import DefinitionError, ExpectationViolation
from localdlt.graph import Expectation
from localdlt.metrics import FlowMetrics

_MARKER = "LOCALDLT_EXPECTATION_FAILED"
_MARKER_RE = re.compile(_MARKER + r"\[([0-9]+)\]:(.*?)(?:\n|$)", re.S)
_counter = itertools.count()
# marker id -> (dataset, expectation): a failing row's error names both, whatever plan it came from
_fail_rules: dict[int, tuple[str, Expectation]] = {}


def constraint_column(expectation: Expectation) -> Column:
    c = expectation.constraint
    return F.expr(c) if isinstance(c, str) else c


def validate(df: DataFrame, expectations: Sequence[Expectation], dataset: str) -> None:
    """Check every constraint against the dataset's schema before any data is written."""
    for e in expectations:
        try:
            df.select(constraint_column(e).cast("boolean"))
        except Exception as err:  # AnalysisException / ParseException
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise DefinitionError(
                f"Expectation '{e.name}' on dataset '{dataset}' is not a valid constraint "
                f"({e.constraint_sql!r}): {first}"
            ) from None


@dataclass
class AppliedExpectations:
    """The DataFrame with expectations applied, and how to read their counts after the action ran."""

    df: DataFrame
    dataset: str
    expectations: list[Expectation]
    observation: Observation | None = None
    observation_name: str | None = None  # for streaming plans: metrics arrive in query progress

    def metrics(self, progress_metrics: dict[str, Any] | None = None) -> FlowMetrics:
        out = FlowMetrics()
        if self.observation is not None:
            if not observation_completed(self.observation):
                return out  # the action was skipped (e.g. an idempotent write already committed)
            row = self.observation.get
        else:
            row = (progress_metrics or {}).get(self.observation_name or "", {})
        if not row:
            return out
        total = int(row.get("__total") or 0)
        out.num_output_rows = int(row.get("__kept") or 0)
        for i, e in enumerate(self.expectations):
            passed = int(row.get(f"__pass_{i}") or 0)
            out.add_expectation(self.dataset, e.name, passed, total - passed)
        out.dropped_records = total - out.num_output_rows
        return out


def observation_completed(observation: Observation) -> bool:
    """Whether the observed action ran (`Observation.get` would block forever otherwise)."""
    jo = getattr(observation, "_jo", None)
    return jo is not None and bool(jo.future().isCompleted())


def apply(df: DataFrame, expectations: Sequence[Expectation], dataset: str) -> AppliedExpectations:
    """Apply expectations lazily; counts (and the number of rows kept) become available once an action on
    the result has run. Also used without expectations, to count the rows written."""
    expectations = list(expectations)
    columns = df.columns
    passes = [F.coalesce(constraint_column(e).cast("boolean"), F.lit(False)) for e in expectations]

    fail_checks = []
    for e, p in zip(expectations, passes, strict=True):
        if e.action == "fail":
            marker = next(_counter)
            _fail_rules[marker] = (dataset, e)
            message = F.concat(F.lit(f"{_MARKER}[{marker}]:"), F.to_json(F.struct(*columns)))
            # true for a passing row; a failing row stops the job (the optimizer cannot fold this away)
            fail_checks.append(F.when(~p, F.raise_error(message)).otherwise(F.lit(True)))
    checked = df
    for check in fail_checks:
        checked = checked.filter(check)

    drop_passes = [p for e, p in zip(expectations, passes, strict=True) if e.action == "drop"]
    kept = F.lit(True)
    for p in drop_passes:
        kept = kept & p
    aggregates = [F.count(F.lit(1)).alias("__total"), F.sum(kept.cast("long")).alias("__kept")]
    aggregates += [F.sum(p.cast("long")).alias(f"__pass_{i}") for i, p in enumerate(passes)]

    name = f"dlt_expectations_{dataset}_{next(_counter)}"
    if df.isStreaming:
        observed = checked.observe(name, *aggregates)
        applied = AppliedExpectations(observed, dataset, expectations, observation_name=name)
    else:
        observation = Observation(name)
        observed = checked.observe(observation, *aggregates)
        applied = AppliedExpectations(observed, dataset, expectations, observation=observation)
    if drop_passes:
        applied.df = applied.df.filter(kept)
    return applied


def violation_from(err: BaseException, flow: str) -> ExpectationViolation | None:
    """The `ExpectationViolation` behind a Spark job failure caused by a fail expectation, if it was one."""
    match = _MARKER_RE.search(str(err))
    if match is None or int(match.group(1)) not in _fail_rules:
        return None
    dataset, e = _fail_rules[int(match.group(1))]
    return ExpectationViolation(flow, dataset, e.name, e.constraint_sql, match.group(2).strip())
