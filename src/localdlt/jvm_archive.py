"""A class-data sharing (AppCDS) archive of the Spark + Delta driver JVM: the classes a pipeline update loads,
parsed and verified once, then mapped into every later JVM instead of being loaded again from the jars.

On two cores this cuts Spark's start from about 10 s to 4-6 s and takes seconds off the first jobs of every
process (measured by `bench/bench_runtime.py`). The archive is specific to the Java binary, the pyspark
version and the jars, and its file name is a hash of them: when any of them changes, no archive matches
and Spark starts as it would without one until `scripts/setup` builds a new one. A JVM that finds the archive
unusable ignores it (`-Xshare:auto`); nothing depends on it but speed. `LOCALDLT_JVM_ARCHIVE=off` disables it.

    python -m localdlt.jvm_archive [--force]     # what scripts/setup runs
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV_SWITCH = "LOCALDLT_JVM_ARCHIVE"
ENV_DUMP = "LOCALDLT_JVM_ARCHIVE_DUMP"  # set for the training process: where its JVM writes the archive
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"


def _java() -> Path | None:
    home = os.environ.get("JAVA_HOME")
    found = Path(home) / "bin" / "java" if home else shutil.which("java")
    return Path(found).resolve() if found and Path(found).exists() else None


def archive_key(jars: list[str]) -> str | None:
    """What the archive depends on, hashed: the Java binary, pyspark's version and jars, our jars."""
    import pyspark

    java = _java()
    if java is None:
        return None
    spark_jars = sorted(Path(pyspark.__file__).parent.joinpath("jars").glob("*.jar"))
    parts = [str(java), str(java.stat().st_size), pyspark.__version__]
    parts += [f"{p.name}:{p.stat().st_size}" for p in spark_jars]
    parts += [f"{Path(j).name}:{Path(j).stat().st_size}" for j in sorted(jars)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def archive_path(jar_folder: Path, jars: list[str]) -> Path | None:
    key = archive_key(jars)
    return jar_folder.parent / "jvm" / f"spark-{key}.jsa" if key else None


def java_options(jar_folder: Path, jars: list[str]) -> str:
    """Extra driver JVM options: write the archive (training), use it (when built), or nothing."""
    dump = os.environ.get(ENV_DUMP)
    if dump:
        return f"-XX:ArchiveClassesAtExit={dump} {QUIET}"
    if os.environ.get(ENV_SWITCH, "").lower() in ("off", "0", "false", "no"):
        return ""
    path = archive_path(jar_folder, jars)
    return f"-XX:SharedArchiveFile={path} {QUIET}" if path is not None and path.is_file() else ""


def _train() -> None:
    """The training workload: an update of the ten-table example (analysis, streaming tables, materialized
    views, expectations, Delta writes, the event log) and a Delta MERGE, then a clean JVM exit, at which the
    JVM writes the archive."""
    from pyspark import SparkContext

    from localdlt import UpdateOptions, run_update
    from localdlt.examples.demo import PIPELINE as example
    from localdlt.examples.landing import write_batch
    from localdlt.progress import ConsoleProgress
    from localdlt.session import get_spark

    spark = get_spark("localdlt-jvm-archive")
    with tempfile.TemporaryDirectory(prefix="localdlt-jvm-archive-") as tmp:
        landing = Path(tmp) / "landing"
        write_batch(landing, orders=200, batch=0)
        for _ in range(2):  # the second update takes the no-change paths
            run_update(
                [example],
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
    from localdlt.session import jar_dir, jar_files

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
