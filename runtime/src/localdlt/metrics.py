"""Per-flow figures of one update, in the shape of the event log's `flow_progress` details."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ExpectationMetrics:
    name: str
    dataset: str
    passed_records: int = 0
    failed_records: int = 0


@dataclass
class FlowMetrics:
    num_output_rows: int = 0
    num_upserted_rows: int | None = None
    num_deleted_rows: int | None = None
    dropped_records: int = 0
    expectations: dict[tuple[str, str], ExpectationMetrics] = field(default_factory=dict)
    batches: int = 0

    def add_expectation(self, dataset: str, name: str, passed: int, failed: int) -> None:
        key = (dataset, name)
        metric = self.expectations.setdefault(key, ExpectationMetrics(name=name, dataset=dataset))
        metric.passed_records += int(passed)
        metric.failed_records += int(failed)

    def merge(self, other: FlowMetrics) -> None:
        self.num_output_rows += other.num_output_rows
        if other.num_upserted_rows is not None:
            self.num_upserted_rows = (self.num_upserted_rows or 0) + other.num_upserted_rows
        if other.num_deleted_rows is not None:
            self.num_deleted_rows = (self.num_deleted_rows or 0) + other.num_deleted_rows
        self.dropped_records += other.dropped_records
        self.batches += other.batches
        for m in other.expectations.values():
            self.add_expectation(m.dataset, m.name, m.passed_records, m.failed_records)

    def minus(self, reported: FlowMetrics) -> FlowMetrics:
        """The figures added since `reported` (an earlier copy of these): what a progress event reports
        when earlier events already reported `reported`, so that summing a flow's events gives its total.
        Every expectation stays listed, with zero counts when nothing new was judged."""

        def less(now: int | None, before: int | None) -> int | None:
            return None if now is None else now - (before or 0)

        out = FlowMetrics(
            num_output_rows=self.num_output_rows - reported.num_output_rows,
            num_upserted_rows=less(self.num_upserted_rows, reported.num_upserted_rows),
            num_deleted_rows=less(self.num_deleted_rows, reported.num_deleted_rows),
            dropped_records=self.dropped_records - reported.dropped_records,
            batches=self.batches - reported.batches,
        )
        for key, m in self.expectations.items():
            before = reported.expectations.get(key)
            out.add_expectation(
                m.dataset,
                m.name,
                m.passed_records - (before.passed_records if before else 0),
                m.failed_records - (before.failed_records if before else 0),
            )
        return out

    def copy(self) -> FlowMetrics:
        out = FlowMetrics()
        out.merge(self)
        return out

    def to_details(self) -> dict[str, Any]:
        """`metrics` and `data_quality` of a `flow_progress` event, as Databricks documents them."""
        metrics: dict[str, Any] = {"num_output_rows": self.num_output_rows}
        if self.num_upserted_rows is not None:
            metrics["num_upserted_rows"] = self.num_upserted_rows
        if self.num_deleted_rows is not None:
            metrics["num_deleted_rows"] = self.num_deleted_rows
        out: dict[str, Any] = {"metrics": metrics}
        if self.expectations:
            out["data_quality"] = {
                "dropped_records": self.dropped_records,
                "expectations": [
                    {
                        "name": m.name,
                        "dataset": m.dataset,
                        "passed_records": m.passed_records,
                        "failed_records": m.failed_records,
                    }
                    for m in self.expectations.values()
                ],
            }
        return out
