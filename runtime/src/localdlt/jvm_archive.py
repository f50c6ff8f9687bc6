"""Build the class-data sharing (AppCDS) archive of the Spark + Delta driver JVM: a training run (an update
of the ten-table example and a Delta MERGE) in a JVM that writes the classes it loaded into the archive as
it exits. What the archive is, where it goes and how a session maps it: `localdlt.jvm_archive_options`.

    python -m localdlt.jvm_archive [--force]     # what scripts/setup runs
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from localdlt.examples.demo import PIPELINE as EXAMPLE
from localdlt.examples.landing import write_batch
from localdlt.jars import jar_dir, jar_files
from localdlt.jvm_archive_options import ENV_DUMP, archive_path
from localdlt.progress import ConsoleProgress
from localdlt.runner import run_update
from localdlt.session import get_spark
from localdlt.update_types import UpdateOptions


def _train() -> None:
    """The training workload: an update of the ten-table example (analysis, streaming tables, materialized
    views, expectations, Delta writes, the event log) and a Delta MERGE, then a clean JVM exit, at which the
    JVM writes the archive."""
    from pyspark import SparkContext

    spark = get_spark("localdlt-jvm-archive")
    with tempfile.TemporaryDirectory(prefix="localdlt-jvm-archive-") as tmp:
        landing = Path(tmp) / "landing"
        write_batch(landing, orders=200, batch=0)
        for _ in range(2):  # the second update takes the no-change paths
            run_update(
                [EXAMPLE],
                Path(tmp) / "storage",
                conf={"example.landing": str(landing)},
                options=UpdateOptions(),
                spark=spark,
                progress=ConsoleProgress(quiet=True),
            )
        from delta.tables import DeltaTable

        target = str(Path(tmp) / "storage" / "tables" / "orders")
        DeltaTable.forPath(spark, target).alias("t").merge(
            spark.read.format("delta").load(target).limit(5).alias("s"), "t.order_id = s.order_id"
        ).whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()
    proc = SparkContext._gateway.proc if SparkContext._gateway is not None else None  # type: ignore[attr-defined]
    spark.stop()
    if proc is not None:  # the JVM exits when its stdin closes, and writes the archive as it exits
        proc.stdin.close()
        proc.wait(timeout=600)


def build(force: bool = False) -> Path | None:
    """Build the archive for the current Java, pyspark and jars unless it exists; returns its path."""
    if not EXAMPLE.is_dir():  # an installed wheel: the training pipeline lives in the source tree
        print(
            f"jvm archive: no training pipeline at {EXAMPLE} (a source checkout has it); skipped",
            file=sys.stderr,
        )
        return None
    jars = jar_files()
    path = archive_path(jar_dir(), jars)
    if path is None:
        print("jvm archive: no Java found; skipped", file=sys.stderr)
        return None
    if path.is_file() and not force:
        print(f"jvm archive: up to date ({path})", file=sys.stderr)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".partial-{os.getpid()}")
    env = {**os.environ, ENV_DUMP: str(partial)}
    started = time.monotonic()
    print(f"jvm archive: training run to build {path.name} (one to two minutes)", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, "-m", "localdlt.jvm_archive", "--train"], env=env)
    if done.returncode != 0 or not partial.is_file() or partial.stat().st_size == 0:
        partial.unlink(missing_ok=True)
        print("jvm archive: the training run failed; Spark starts without an archive", file=sys.stderr)
        return None
    for old in path.parent.glob("spark-*.jsa"):  # archives of earlier jars or Java are of no more use
        old.unlink(missing_ok=True)
    partial.replace(path)
    size = path.stat().st_size / 2**20
    print(f"jvm archive: {path} ({size:.0f} MB) in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localdlt.jvm_archive",
        description="Build the class-data sharing archive that makes Spark's driver JVM start faster.",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if an archive matches")
    parser.add_argument("--train", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train:
        _train()
        return 0
    build(force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
