"""The continuous CDC phase of the benchmark, minute by minute (issue [cdc-latency]).

While the workload runs, `CdcMonitor` samples every second: the changes offered to the captured tables
(PostgreSQL's own counters of inserted, updated and deleted rows), the CPU of each component (the capture:
the `pgcdc` readers' Python processes and the server processes serving their connections; the JVM; other Python workers; this
process, which is the pipeline's driver and the workload generator; the rest of PostgreSQL), the process
tree's memory and the WAL the replication slots retain. After the run, `minutes()` joins that with what
reached bronze (the change tables' and targets' Delta commits) and the probes' lags.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inventory_bronze.source.capture_connection import APPLICATION_NAME

#: the capture: the pgcdc readers' processes and the server processes serving them (the replication
#: connections' walsenders, or backends running the capture's SQL; application_name tells them apart)
CAPTURE = ("capture readers", "capture server")
TREE = ("capture readers", "JVM", "other Python", "driver+workload")


@dataclass
class Sample:
    at: float  # time.time()
    offered: int  # cumulative rows inserted + updated + deleted in the captured tables
    cpu: dict[str, float]  # CPU seconds per component since the previous sample
    rss: int  # bytes, this process tree
    retained: int  # bytes of WAL the slots keep (the largest of them)


@dataclass
class Minute:
    index: int
    offered: float = 0.0  # changes/s
    captured: float = 0.0  # change rows/s appended to bz_<table>_changes
    applied: float = 0.0  # keys/s merged into bz_<table>
    lags: list[float] = field(default_factory=list)
    cores: dict[str, float] = field(default_factory=dict)
    peak_rss: int = 0
    retained: int = 0


def _component(cmdline: str, name: str) -> str | None:
    if "python_streaming_source_runner" in cmdline:
        return "capture readers"
    if "java" in name:
        return "JVM"
    if "python" in name:
        return "other Python"
    return None


class CdcMonitor:
    def __init__(
        self, info: Any, pg_pid: int, tables: list[str], slots: list[str], every: float = 1.0
    ) -> None:
        import psutil

        self.info = info
        self.tables = tables
        self.slots = slots
        self.every = every
        self.root = psutil.Process()
        self.server = psutil.Process(pg_pid)
        self.samples: list[Sample] = []
        self._last_cpu: dict[int, float] = {}
        self._baseline = True  # the first reading only records every process's CPU time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._conn = self.info.connect(autocommit=True)
        self._cpu_by_component()
        self._baseline = False
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            offered, retained = self._source_figures()
            self.samples.append(Sample(time.time(), offered, self._cpu_by_component(), self._rss(), retained))

    def _source_figures(self) -> tuple[int, int]:
        row = self._conn.execute(
            "SELECT (SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables "
            "        WHERE schemaname = 'tests' AND relname = ANY(%s)), "
            "       (SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)), 0) "
            "        FROM pg_replication_slots WHERE slot_name = ANY(%s))",
            (self.tables, self.slots),
        ).fetchone()
        return int(row[0]), int(row[1])

    def _processes(self) -> list[tuple[Any, str]]:
        import psutil

        out: list[tuple[Any, str]] = [(self.root, "driver+workload")]
        for proc in self.root.children(recursive=True):
            try:
                kind = _component(" ".join(proc.cmdline()), proc.name())
            except psutil.Error:
                continue
            if kind is not None:
                out.append((proc, kind))
        capture = {
            int(row[0])
            for row in self._conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (APPLICATION_NAME,)
            ).fetchall()
        }
        for proc in [self.server, *self.server.children()]:
            out.append((proc, "capture server" if proc.pid in capture else "PostgreSQL other"))
        return out

    def _cpu_by_component(self) -> dict[str, float]:
        import psutil

        spent: dict[str, float] = defaultdict(float)
        for proc, kind in self._processes():
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total = times.user + times.system
            if proc.pid in (self.root.pid, self.server.pid):  # their reaped children count too
                total += times.children_user + times.children_system
            spent[kind] += max(0.0, total - self._last_cpu.get(proc.pid, total if self._baseline else 0.0))
            self._last_cpu[proc.pid] = total
        return dict(spent)

    def _rss(self) -> int:
        import psutil

        total = 0
        for proc in [self.root, *self.root.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        return total

    # ------------------------------------------------------------------------------------- afterwards
    def minutes(
        self, started: float, ended: float, tables_dir: Path, probes: list[tuple[float, float]]
    ) -> list[Minute]:
        """Per minute of [started, ended): offered, captured and applied rates, the lags of the probes
        committed in it (`probes`: (commit time, lag)), CPU cores per component, peak memory, WAL."""
        count = max(1, int((ended - started + 59) // 60))
        out = [Minute(i) for i in range(count)]

        def bucket(at: float) -> Minute | None:
            index = int((at - started) // 60)
            return out[index] if at < ended and 0 <= index < count else None

        seconds = [min(60.0, ended - started - 60 * i) for i in range(count)]
        previous = None
        for sample in self.samples:
            minute = bucket(sample.at)
            if minute is not None:
                for kind, cpu in sample.cpu.items():
                    minute.cores[kind] = minute.cores.get(kind, 0.0) + cpu
                minute.peak_rss = max(minute.peak_rss, sample.rss)
                minute.retained = max(minute.retained, sample.retained)
                if previous is not None:
                    minute.offered += sample.offered - previous.offered
            previous = sample
        for table in self.tables:
            for at, rows in _commits(tables_dir / f"bz_{table}_changes", "numOutputRows"):
                if (minute := bucket(at)) is not None:
                    minute.captured += rows
            for at, rows in _commits(tables_dir / f"bz_{table}", "numSourceRows"):
                if (minute := bucket(at)) is not None:
                    minute.applied += rows
        for at, lag in probes:
            if (minute := bucket(at)) is not None:
                minute.lags.append(lag)
        for minute, secs in zip(out, seconds, strict=True):
            minute.offered /= secs
            minute.captured /= secs
            minute.applied /= secs
            minute.cores = {k: v / secs for k, v in minute.cores.items()}
        return out


def _commits(table: Path, metric: str) -> list[tuple[float, int]]:
    """(commit time in s, the operation metric) of each commit of a Delta table that has the metric."""
    out = []
    for entry in sorted((table / "_delta_log").glob("*.json")):
        for line in entry.read_text().splitlines():
            info = json.loads(line).get("commitInfo")
            if info is None:
                continue
            value = (info.get("operationMetrics") or {}).get(metric)
            if value is not None:
                out.append((info["timestamp"] / 1000, int(value)))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


def print_minutes(minutes: list[Minute]) -> None:
    print(
        f"  {'minute':>6} {'offered/s':>9} {'captured/s':>10} {'applied/s':>9} {'lag p50':>8} {'p95':>7} "
        f"{'max':>7} {'capture':>7} {'JVM':>5} {'tree':>5} {'PG':>5} {'peak GB':>7} {'WAL MB':>7}"
    )
    for m in minutes:
        finite = [x for x in m.lags if x != float("inf")]
        capture = sum(m.cores.get(k, 0.0) for k in CAPTURE)
        tree = sum(m.cores.get(k, 0.0) for k in TREE)
        pg = m.cores.get("PostgreSQL other", 0.0) + m.cores.get("capture server", 0.0)
        print(
            f"  {m.index + 1:>6} {m.offered:9.0f} {m.captured:10.0f} {m.applied:9.0f} "
            f"{percentile(finite, 0.5):8.2f} {percentile(finite, 0.95):7.2f} {max(finite, default=float('nan')):7.2f} "
            f"{capture:7.2f} {m.cores.get('JVM', 0.0):5.2f} {tree:5.2f} {pg:5.2f} {m.peak_rss / 1024**3:7.2f} "
            f"{m.retained / 1024**2:7.1f}"
        )
    print(
        "  (rates per second; lag: source commit -> visible in bz_<table>, probes by the minute they were "
        "committed, s;\n   CPU in cores: capture = the pgcdc readers + the server processes serving them; tree = "
        "this process tree (JVM, Python workers, the driver and the workload generator); PG = the server;"
        "\n   WAL MB: the most any capture slot retains)"
    )
