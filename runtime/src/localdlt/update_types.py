"""What an update takes and gives back: `UpdateOptions` in, `UpdateResult` out, one `FlowOutcome` per flow
(also handed to the progress display each time a flow's state changes)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from localdlt.metrics import FlowMetrics


@dataclass
class UpdateOptions:
    full_refresh: bool = False
    full_refresh_tables: list[str] | None = None
    continuous: bool = False
    max_seconds: float | None = None
    max_workers: int = 2
    trigger_interval_seconds: float = 1.0
    #: set from another thread to stop the update (a continuous one ends its streams cleanly)
    stop_event: threading.Event | None = None


@dataclass
class FlowOutcome:
    flow: str
    target: str
    status: str = "QUEUED"
    metrics: FlowMetrics = field(default_factory=FlowMetrics)
    error: BaseException | None = None
    seconds: float = 0.0
    no_op_reason: str | None = None  # the flow had nothing to do (materialized view unchanged, no input)


@dataclass
class UpdateResult:
    update_id: str
    pipeline_id: str
    state: str
    storage: str
    flows: dict[str, FlowOutcome] = field(default_factory=dict)
    seconds: float = 0.0
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETED"
