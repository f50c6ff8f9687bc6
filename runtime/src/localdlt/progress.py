"""The update's progress on the terminal, like the pipeline UI's graph in text: each flow's state as it
changes, with rows written and expectation figures."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from localdlt.update_types import FlowOutcome, UpdateResult


def _rows(outcome: FlowOutcome) -> str:
    m = outcome.metrics
    parts = [f"{m.num_output_rows:,} rows"]
    if m.num_upserted_rows is not None:
        parts.append(f"{m.num_upserted_rows:,} upserted")
    if m.num_deleted_rows is not None:
        parts.append(f"{m.num_deleted_rows:,} deleted")
    if m.dropped_records:
        parts.append(f"{m.dropped_records:,} dropped")
    failed = sum(e.failed_records for e in m.expectations.values())
    if failed:
        parts.append(f"{failed:,} expectation failures")
    return ", ".join(parts)


class ConsoleProgress:
    def __init__(
        self, out: TextIO | None = None, quiet: bool = False, redact: Callable[[str], str] | None = None
    ) -> None:
        self.out = out or sys.stdout
        self.quiet = quiet
        self.redact = redact or (lambda text: text)  # for error texts, as the event log's
        self.started = time.monotonic()
        self._last: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        if self.quiet:
            return
        with self._lock:
            print(f"[{time.monotonic() - self.started:7.1f}s] {text}", file=self.out, flush=True)

    def on_flow(self, outcome: FlowOutcome) -> None:
        key = (outcome.status, outcome.metrics.num_output_rows + (outcome.metrics.num_upserted_rows or 0))
        if self._last.get(outcome.flow) == key:
            return
        self._last[outcome.flow] = key
        detail = ""
        if outcome.status in ("RUNNING", "COMPLETED", "STOPPED") and (outcome.metrics.batches or key[1]):
            detail = "  " + _rows(outcome)
        if outcome.status == "FAILED" and outcome.error is not None:
            detail = f"  {self.redact(str(outcome.error))}"
        if outcome.status == "COMPLETED" and outcome.no_op_reason:
            detail = f"  up to date ({outcome.no_op_reason})"
        self.line(f"{outcome.flow:<32} {outcome.status:<9}{detail}")

    def summary(self, result: UpdateResult) -> None:
        if self.quiet:
            return
        print(f"\nUpdate {result.update_id} {result.state} in {result.seconds:.1f}s", file=self.out)
        width = max([len(f) for f in result.flows] + [4])
        for name, o in result.flows.items():
            print(f"  {name:<{width}}  {o.status:<9}  {_rows(o)}", file=self.out)
        if result.error is not None and not result.flows:
            print(f"  error: {self.redact(str(result.error))}", file=self.out)
        self.out.flush()
