"""Pipeline storage layout, like Databricks' pipeline storage location:

DIR/tables/<dataset>            every published dataset, a Delta table
DIR/system/events               the event log, a Delta table
DIR/system/state/<target>/...   hidden state of AUTO CDC targets (tombstones, sequences)
DIR/checkpoints/<flow>/<gen>    streaming checkpoints; a full refresh starts a new generation
DIR/system/flows/<flow>.json    small per-flow bookkeeping (current generation, once-flows done)
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any) -> None:
    """Write `data` as JSON to `path` atomically: a crash leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))
    os.replace(tmp, path)


@dataclass(frozen=True)
class Storage:
    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike[str]) -> Storage:
        path = Path(root).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    def table_path(self, name: str, override: str | None = None, temporary: bool = False) -> str:
        """Published datasets live in tables/; `temporary=True` ones (not published) in temporary/."""
        if override:
            return str(Path(override).resolve())
        return str(self.root / ("temporary" if temporary else "tables") / name)

    def dataset_path(self, ds: Any) -> str:
        return self.table_path(ds.name, ds.path, ds.temporary)

    @property
    def event_log_path(self) -> str:
        return str(self.root / "system" / "events")

    def state_path(self, target: str, *parts: str) -> str:
        return str(self.root.joinpath("system", "state", target, *parts))

    # --- per-flow bookkeeping -------------------------------------------------------------------
    def _flow_file(self, flow: str) -> Path:
        return self.root / "system" / "flows" / f"{flow}.json"

    def flow_state(self, flow: str) -> dict[str, Any]:
        path = self._flow_file(flow)
        if not path.exists():
            return {}
        return json.loads(path.read_text())

    def save_flow_state(self, flow: str, state: dict[str, Any]) -> None:
        write_json(self._flow_file(flow), state)

    def generation(self, flow: str) -> str:
        """The flow's current checkpoint generation (created on first use)."""
        state = self.flow_state(flow)
        if "generation" not in state:
            state["generation"] = uuid.uuid4().hex[:12]
            self.save_flow_state(flow, state)
        return state["generation"]

    def checkpoint_path(self, flow: str) -> str:
        return str(self.root / "checkpoints" / flow / self.generation(flow))

    def reset_flow(self, flow: str) -> None:
        """Full refresh of a flow: a new checkpoint generation (so idempotent-write ids start afresh)."""
        old = self.flow_state(flow).get("generation")
        self.save_flow_state(flow, {"generation": uuid.uuid4().hex[:12]})
        if old:
            shutil.rmtree(self.root / "checkpoints" / flow / old, ignore_errors=True)
