"""Where the CPU of one warm update goes: the driver JVM's threads by name (JIT compilers, task threads, GC,
...), the processes the JVM forked and waited for, the Python tree, PostgreSQL and the whole machine.

Runs in one process: a change workload, a warm-up update of both bronze pipelines, another workload, then
the measured update. `--jfr FILE` records it with Java Flight Recorder (then e.g. `jfr print --events
jdk.ProcessStart FILE`, `jfr print --events jdk.Compilation FILE`). Needs the local PostgreSQL of the
storage (`inventory-bronze db start`) and a storage its capture slots belong to (e.g. the demo's).

    .venv/bin/python bench/update_cpu.py --storage var/demo --changes 1000
    LOCALDLT_LOCALFS=off .venv/bin/python bench/update_cpu.py ...     # A/B: Hadoop's own local file system
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import time
from pathlib import Path

import psutil

TICK = os.sysconf("SC_CLK_TCK")


def _jvm_threads(pid: int) -> dict[str, tuple[str, float]]:
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[tid] = (re.sub(r"\d+", "N", name), (int(fields[11]) + int(fields[12])) / TICK)
    return out


def _waited_children(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[13]) + int(fields[14])) / TICK


def _python_tree(jvm_pid: int) -> float:
    me, total = psutil.Process(), 0.0
    for proc in [me, *me.children(recursive=True)]:
        if proc.pid == jvm_pid:
            continue
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _postgres() -> float:
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if "postgres" in (proc.info["name"] or ""):
            try:
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
    return total


def _machine_busy() -> float:
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(f) - f[3] - f[4]) / TICK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--storage", type=Path, default=Path("var/demo"), help="pipelines' storage (var/demo)"
    )
    parser.add_argument("--changes", type=int, default=1000, help="changes before each update (1000)")
    parser.add_argument("--jfr", type=Path, help="record the measured update with Java Flight Recorder")
    args = parser.parse_args(argv)

    from inventory_bronze.spark_session import get_spark

    spark = get_spark("inventory-bronze")
    from inventory_devkit.local_run import run_pipelines
    from inventory_devkit.postgres.server import ensure_server
    from inventory_devkit.postgres.workload import run_changes

    info = ensure_server()
    pid = int(spark._jvm.ProcessHandle.current().pid())
    codegen = spark._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME()
    run_changes(info, count=args.changes, seed=7, quiet=True)
    print("warm-up update ...", flush=True)
    run_pipelines(storage=args.storage, quiet=True)
    run_changes(info, count=args.changes, seed=8, quiet=True)

    before = (_jvm_threads(pid), _waited_children(pid), _python_tree(pid), _postgres(), _machine_busy())
    compiles, start = codegen.getCount(), time.monotonic()
    if args.jfr:
        rec = ["jcmd", str(pid), "JFR.start", "name=update", "settings=profile", f"filename={args.jfr}"]
        subprocess.run(rec, check=True, capture_output=True)
    print("measured update ...", flush=True)
    run_pipelines(storage=args.storage, quiet=True)
    if args.jfr:
        subprocess.run(["jcmd", str(pid), "JFR.stop", "name=update"], check=True, capture_output=True)
    wall = time.monotonic() - start
    after = (_jvm_threads(pid), _waited_children(pid), _python_tree(pid), _postgres(), _machine_busy())

    groups: collections.Counter[str] = collections.Counter()
    for tid, (name, cpu) in after[0].items():
        groups[name] += cpu - before[0].get(tid, (name, 0.0))[1]
    jvm = sum(groups.values())
    print(
        f"update wall {wall:.1f} s; CPU: JVM {jvm:.1f} s, processes the JVM forked {after[1] - before[1]:.1f} s, "
        f"Python tree {after[2] - before[2]:.1f} s, PostgreSQL {after[3] - before[3]:.1f} s; machine busy "
        f"{after[4] - before[4]:.1f} of {wall * (os.cpu_count() or 1):.1f} CPU-s; "
        f"Janino compilations {codegen.getCount() - compiles}"
    )
    for name, cpu in groups.most_common(12):
        print(f"  {name:32s} {cpu:7.1f} s {100 * cpu / jvm:5.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
