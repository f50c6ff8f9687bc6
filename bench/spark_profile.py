"""Where a pipeline update's time goes, per flow, from Spark's own event log (the data behind the Spark UI).

    .venv/bin/python bench/spark_profile.py DIR [--since MS --until MS]

The local runtime names every Spark job after the flow that runs it (the job group), so Spark's event log
(`spark.eventLog.enabled`, written under DIR) tells per flow: how many SQL executions and jobs it ran, how
long its jobs ran (wall, the union of their intervals), the tasks' run and CPU time, and how much of the
flow's time no job was running: the driver's part (query analysis and planning, Delta log work, Python).
`bench_bronze.py --profile` prints this for its initial load and its incremental update.
"""

from __future__ import annotations

import argparse
import io
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

SQL_START = "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart"
SQL_END = "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionEnd"


@dataclass
class GroupProfile:
    group: str
    jobs: int = 0
    intervals: list[tuple[int, int]] = field(default_factory=list)  # job (submitted, completed), ms
    tasks: int = 0
    task_run_ms: int = 0
    task_cpu_ns: int = 0
    gc_ms: int = 0
    executions: dict[int, str] = field(default_factory=dict)  # SQL execution id -> what it was

    @property
    def first(self) -> int:
        return min(s for s, _ in self.intervals)

    @property
    def last(self) -> int:
        return max(e for _, e in self.intervals)

    @property
    def job_wall_ms(self) -> int:
        """Time at least one of the group's jobs was running (the union of their intervals)."""
        total, end = 0, -1
        for start, stop in sorted(self.intervals):
            if stop <= end:
                continue
            total += stop - max(start, end)
            end = stop
        return total


def _log_files(directory: Path) -> list[Path]:
    """The event log's files in order: one file, or Spark 4's rolling folders (events_<n>_<app>[.zstd])."""

    def order(path: Path) -> tuple[str, int]:
        match = re.match(r"events_(\d+)_", path.name)
        return (str(path.parent), int(match.group(1)) if match else 0)

    files = [p for p in directory.rglob("*") if p.is_file() and not p.name.startswith((".", "appstatus"))]
    return sorted(files, key=order)


def _lines(directory: Path) -> list[dict]:
    events = []
    for path in _log_files(directory):
        if path.suffix == ".zstd":
            import zstandard

            with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
                text = io.TextIOWrapper(reader, encoding="utf-8").read()
        else:
            text = path.read_text()
        events.extend(json.loads(line) for line in text.splitlines() if line.strip())
    return events


def _what(start: dict) -> str:
    """A short name for a SQL execution: its description, else the top node of its physical plan."""
    description = (start.get("description") or "").strip().splitlines()
    plan = (start.get("physicalPlanDescription") or "").splitlines()
    top = next((p for p in plan if p.strip() and not p.startswith("==")), "")
    text = description[0] if description else top
    return " ".join(text.replace("*", "").split())[:70]


def _group(props: dict) -> str:
    """The flow a job ran for: its job group, or for a streaming query's job (Spark sets the query's run id
    as the group) the query's name, the first line of the job description."""
    if "sql.streaming.queryId" in props:
        return (props.get("spark.job.description") or "?").splitlines()[0].removeprefix("Delta: ")
    return props.get("spark.jobGroup.id") or "(no flow: runtime, event log, set-up)"


def profile(directory: Path, since_ms: int = 0, until_ms: int = 2**62) -> dict[str, GroupProfile]:
    """Per job group (flow), what its jobs submitted in [since, until] did."""
    events = _lines(directory)
    job_group: dict[int, str] = {}
    job_start: dict[int, int] = {}
    stage_group: dict[int, str] = {}
    sql_what: dict[int, str] = {}
    groups: dict[str, GroupProfile] = defaultdict(lambda: GroupProfile(""))
    for event in events:
        kind = event.get("Event")
        if kind == SQL_START:
            sql_what[int(event["executionId"])] = _what(event)
        elif kind == "SparkListenerJobStart":
            submitted = int(event.get("Submission Time", 0))
            if not since_ms <= submitted <= until_ms:
                continue
            props = event.get("Properties") or {}
            group = _group(props)
            job = int(event["Job ID"])
            job_group[job], job_start[job] = group, submitted
            for stage in event.get("Stage IDs", []):
                stage_group[int(stage)] = group
            prof = groups[group]
            prof.group = group
            prof.jobs += 1
            execution = props.get("spark.sql.execution.id")
            if execution is not None:
                prof.executions[int(execution)] = sql_what.get(int(execution), "?")
        elif kind == "SparkListenerJobEnd":
            job = int(event["Job ID"])
            if job in job_group:
                groups[job_group[job]].intervals.append((job_start[job], int(event["Completion Time"])))
        elif kind == "SparkListenerTaskEnd":
            group = stage_group.get(int(event["Stage ID"]))
            metrics = event.get("Task Metrics") or {}
            if group is None:
                continue
            prof = groups[group]
            prof.tasks += 1
            prof.task_run_ms += int(metrics.get("Executor Run Time", 0))
            prof.task_cpu_ns += int(metrics.get("Executor CPU Time", 0))
            prof.gc_ms += int(metrics.get("JVM GC Time", 0))
    return {g: p for g, p in groups.items() if p.intervals}


def report(
    profiles: dict[str, GroupProfile], flow_seconds: dict[str, float] | None = None, top: int = 12
) -> str:
    """A table, slowest flows first; with the flows' own wall times, the share no job was running."""
    flow_seconds = flow_seconds or {}
    lines = [
        f"  {'flow (Spark job group)':<32} {'wall s':>7} {'jobs s':>7} {'driver s':>8} {'SQL':>4} "
        f"{'jobs':>5} {'tasks':>6} {'task s':>7} {'CPU s':>6} {'GC s':>5}"
    ]
    ordered = sorted(
        profiles.values(), key=lambda p: flow_seconds.get(p.group, p.job_wall_ms / 1000), reverse=True
    )
    for prof in ordered[:top]:
        wall = flow_seconds.get(prof.group)
        jobs = prof.job_wall_ms / 1000
        driver = f"{wall - jobs:8.1f}" if wall is not None else f"{'':>8}"
        lines.append(
            f"  {prof.group[:32]:<32} {(wall if wall is not None else 0):7.1f} {jobs:7.1f} {driver} "
            f"{len(prof.executions):4d} {prof.jobs:5d} {prof.tasks:6d} {prof.task_run_ms / 1000:7.1f} "
            f"{prof.task_cpu_ns / 1e9:6.1f} {prof.gc_ms / 1000:5.1f}"
        )
    totals = GroupProfile("all")
    for prof in profiles.values():
        totals.jobs += prof.jobs
        totals.tasks += prof.tasks
        totals.task_run_ms += prof.task_run_ms
        totals.task_cpu_ns += prof.task_cpu_ns
        totals.gc_ms += prof.gc_ms
        totals.intervals += prof.intervals
    lines.append(
        f"  {'all flows (jobs overlap)':<32} {sum(flow_seconds.values()):7.1f} {totals.job_wall_ms / 1000:7.1f} "
        f"{'':>8} {sum(len(p.executions) for p in profiles.values()):4d} {totals.jobs:5d} {totals.tasks:6d} "
        f"{totals.task_run_ms / 1000:7.1f} {totals.task_cpu_ns / 1e9:6.1f} {totals.gc_ms / 1000:5.1f}"
    )
    lines.append(
        "  (wall: the flow's own time; jobs: time any of its Spark jobs ran; driver: the rest - analysis,"
        " planning, Delta log work, Python)"
    )
    return "\n".join(lines)


def executions(profiles: dict[str, GroupProfile], flow: str) -> list[str]:
    """What the SQL executions of one flow were, in order."""
    prof = profiles.get(flow)
    return [f"{i}: {w}" for i, w in sorted(prof.executions.items())] if prof else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spark_profile", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("directory", type=Path, help="spark.eventLog.dir (a local folder)")
    parser.add_argument("--since", type=int, default=0, help="only jobs submitted from (epoch ms)")
    parser.add_argument("--until", type=int, default=2**62, help="only jobs submitted until (epoch ms)")
    parser.add_argument("--flow", help="also list this flow's SQL executions")
    args = parser.parse_args(argv)
    profiles = profile(args.directory, args.since, args.until)
    print(report(profiles, top=50))
    if args.flow:
        print("\n".join(executions(profiles, args.flow)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
