"""Whether a flow has anything to do, told cheaply before any Spark job runs.

- A materialized view needs no refresh when its query's definition (the analysed plan, with expression
  ids left out), its expectations and configuration, and the Delta versions of everything it reads are
  the same as at its last refresh, and nobody wrote to it since. Databricks plans such a refresh as
  `MAINTENANCE_TYPE_NO_OP` (event `planning_information`). A query reading anything that is not a Delta
  table, a range or inline rows, or using a non-deterministic or time function, or a UDF, is always
  recomputed (`MAINTENANCE_TYPE_COMPLETE_RECOMPUTE`).
- A streaming flow has no new input when its checkpoint's last committed offsets already cover every
  source: the latest version of each Delta source, and every file of each file source. Then no streaming
  query needs to start.

Every check errs on the side of running the flow: anything it cannot tell for sure counts as a change.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pyspark.sql import DataFrame

# Delta's offset index once every file of a version has been read (DeltaSourceOffset.END_INDEX)
DELTA_END_INDEX = 9223372036854775707
# parts of a plan's JSON that differ between two analyses of the same query
_VOLATILE = re.compile(
    r'\{"product-class":"[\w.]*ExprId"[^{}]*\}|"(?:jvmId|__dataset_id|dataframeId|planId|plan_id)":("[^"]*"|\d+)'
)
_OBSERVATION = re.compile(r"(dlt_expectations_[A-Za-z0-9_]*?)_\d+\b")
_MARKER = re.compile(r"(LOCALDLT_EXPECTATION_FAILED)\[\d+\]")
_CLASS = r'"class":"[\w.$]*\.'
# deterministic for Spark, but not from one update to the next
_TIME_FUNCTIONS = re.compile(
    _CLASS + r"(CurrentTimestamp|CurrentDate|CurrentTime\w*|Now|LocalTimestamp|CurrentTimeZone|CurrentUser|"
    r"CurrentBatchTimestamp|InputFile\w+)\""
)
_UDF = re.compile(_CLASS + r"[\w$]*UDF[\w$]*\"")
_VERSION_FILE = re.compile(r"^(\d{20})\.(json|checkpoint\.parquet|checkpoint\.\d+\.\d+\.parquet)$")


def delta_version(path: str | os.PathLike[str]) -> int | None:
    """Latest version of the Delta table at a local path, from its log folder's listing (no Spark)."""
    try:
        names = os.listdir(Path(path) / "_delta_log")
    except OSError:
        return None
    versions = [int(m.group(1)) for m in map(_VERSION_FILE.match, names) if m]
    return max(versions) if versions else None


def local_path(uri: str) -> str | None:
    """A local file system path for a `file:` URI or plain path; None for any other file system."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path) if parsed.scheme else uri
    return None


@dataclass
class Source:
    kind: str  # "delta" | "files" | "range" | "rows" | "other"
    path: str | None = None
    detail: str = ""


@dataclass
class PlanInfo:
    fingerprint: str
    sources: list[Source] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why it must always be recomputed


def _seq(jseq: Any) -> list[Any]:
    return [jseq.apply(i) for i in range(jseq.size())]


def _leaf_source(leaf: Any) -> Source:
    cls = leaf.getClass().getSimpleName()
    if cls == "LogicalRelation":
        relation = leaf.relation()
        try:  # a HadoopFsRelation (Delta's is an anonymous subclass)
            location = relation.location()
        except Exception:
            return Source("other", detail=relation.getClass().getName())
        roots = _seq(location.rootPaths())
        path = local_path(roots[0].toString()) if len(roots) == 1 else None
        if location.getClass().getSimpleName().startswith("Tahoe") and path is not None:
            return Source("delta", path)
        return Source("other", path, detail=relation.fileFormat().toString())
    if cls in ("StreamingRelation", "StreamingRelationV2"):
        source = leaf.dataSource() if cls == "StreamingRelation" else None
        if source is None:
            return Source("other", detail=cls)
        fmt = str(source.className()).lower()
        options = {str(k): str(v) for k, v in _scala_map(source.options()).items()}
        paths = [str(p) for p in _seq(source.paths())] or ([options["path"]] if "path" in options else [])
        path = local_path(paths[0]) if len(paths) == 1 else None
        if path is None:
            return Source("other", detail=fmt)
        if fmt == "delta" or fmt.endswith("deltadatasource"):
            return Source("delta", path)
        return Source("files", path, detail=fmt)
    if cls == "Range":
        return Source("range")
    if cls == "OneRowRelation":
        return Source("rows")
    if cls == "LocalRelation":
        return Source("rows", detail=str(leaf.data().hashCode()))
    return Source("other", detail=cls)


def _scala_map(jmap: Any) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    it = jmap.iterator()
    while it.hasNext():
        pair = it.next()
        out[pair._1()] = pair._2()
    return out


def plan_info(df: DataFrame, extra: Any = None) -> PlanInfo:
    """The query's fingerprint (stable across processes) and what it reads."""
    plan = df._jdf.queryExecution().analyzed()
    text = plan.toJSON()  # every node and expression, with class names, never truncated
    text = _VOLATILE.sub("", text)
    text = _MARKER.sub(r"\1", _OBSERVATION.sub(r"\1", text))
    info = PlanInfo(fingerprint="")
    for leaf in _seq(plan.collectLeaves()):
        source = _leaf_source(leaf)
        info.sources.append(source)
        if source.kind == "other":
            info.reasons.append(f"reads a source that is not a Delta table ({source.detail or 'unknown'})")
    if not plan.deterministic():
        info.reasons.append("uses a non-deterministic function")
    if _TIME_FUNCTIONS.search(text):
        info.reasons.append("uses a time or session function")
    if _UDF.search(text):
        info.reasons.append("uses a UDF")
    payload = json.dumps(
        {"plan": text, "rows": [s.detail for s in info.sources if s.kind == "rows"], "extra": extra},
        sort_keys=True,
        default=str,
    )
    info.fingerprint = hashlib.sha256(payload.encode()).hexdigest()
    return info


def input_versions(info: PlanInfo) -> dict[str, int | None] | None:
    """Latest version of each Delta table the plan reads; None when the plan reads anything else."""
    if info.reasons:
        return None
    return {s.path: delta_version(s.path) for s in info.sources if s.kind == "delta" and s.path}


# ------------------------------------------------------------------------------------------- streams
def _latest_committed_offsets(checkpoint: str) -> list[dict[str, Any]] | None:
    """Offsets of each source in the checkpoint's last batch, if that batch was committed."""
    offsets_dir = Path(checkpoint) / "offsets"
    try:
        batches = sorted(int(n) for n in os.listdir(offsets_dir) if n.isdigit())
    except OSError:
        return None
    if not batches:
        return None
    last = batches[-1]
    if not (Path(checkpoint) / "commits" / str(last)).exists():
        return None  # the last batch did not finish: the stream must run to complete it
    lines = (offsets_dir / str(last)).read_text().splitlines()
    out: list[dict[str, Any]] = []
    for line in lines[2:]:  # version line, batch metadata line, then one line per source
        out.append(json.loads(line) if line.strip() not in ("", "-") else {})
    return out


def _seen_files(checkpoint: str, index: int) -> set[str] | None:
    """Files a file stream source has already read (its metadata log, compacted or not)."""
    folder = Path(checkpoint) / "sources" / str(index)
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    seen: set[str] = set()
    for name in names:
        base = name.removesuffix(".compact")
        if not base.isdigit():
            continue
        for line in (folder / name).read_text().splitlines()[1:]:
            if line.strip():
                seen.add(json.loads(line)["path"])
    return seen


def _listed_files(path: str) -> set[str] | None:
    if any(ch in path for ch in "*?[{"):
        return None  # a glob: leave it to Spark
    root = Path(path)
    if root.is_file():
        return {root.resolve().as_uri()}
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(("_", "."))]
        for name in filenames:
            if not name.startswith(("_", ".")):
                found.add(Path(dirpath, name).resolve().as_uri())
    return found


def _uri_set(uris: set[str]) -> set[str]:
    return {Path(local_path(u) or u).resolve().as_uri() for u in uris}


def stream_has_new_input(df: DataFrame, checkpoint: str) -> str | None:
    """None when a streaming query of `df` on `checkpoint` would find nothing new; otherwise why it might."""
    if not df.isStreaming:
        return "not a stream"
    offsets = _latest_committed_offsets(checkpoint)
    if offsets is None:
        return "no committed batch in the checkpoint"
    plan = df._jdf.queryExecution().analyzed()
    if not plan.deterministic():
        return "non-deterministic query"
    sources = [_leaf_source(leaf) for leaf in _seq(plan.collectLeaves())]
    streams = [s for s in sources if s.kind in ("delta", "files", "other")]
    if len(streams) != len(offsets):
        return "sources differ from the checkpoint's"
    for index, (source, offset) in enumerate(zip(streams, offsets, strict=True)):
        if source.kind == "delta" and source.path:
            latest = delta_version(source.path)
            if latest is None or "reservoirVersion" not in offset:
                return f"cannot read Delta source {source.path}"
            consumed = offset["reservoirVersion"] > latest or (
                offset["reservoirVersion"] == latest
                and offset.get("index") == DELTA_END_INDEX
                and not offset.get("isStartingVersion", False)
            )
            if not consumed:
                return f"new versions in {source.path}"
        elif source.kind == "files" and source.path:
            seen = _seen_files(checkpoint, index)
            listed = _listed_files(source.path)
            if seen is None or listed is None or "logOffset" not in offset:
                return f"cannot compare files of {source.path}"
            if listed - _uri_set(seen):
                return f"new files in {source.path}"
        else:
            return f"source {source.detail or source.kind} cannot be checked"
    return None
