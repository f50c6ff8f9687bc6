"""One Spark session with Delta Lake, configured for small local work on a two-core machine.

Jars come from a local folder (`localdlt.jars`: `$LOCALDLT_JARS`, or the user's cache, filled from Maven
Central the first time), so starting a session never resolves anything with Ivy. The driver JVM maps the class-data archive
that `scripts/setup` builds (`localdlt.jvm_archive_options`; `LOCALDLT_JVM_ARCHIVE=off` to do without) and
takes extra options from `LOCALDLT_JAVA_OPTIONS`; its JIT is chosen by `jit` / `LOCALDLT_JIT` (see
JIT_OPTIONS).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pyspark.sql import SparkSession

import localdlt.jvm_archive_options as jvm_archive_options
import localdlt.localfs as localfs
from localdlt.errors import PipelineError
from localdlt.jars import jar_dir, jar_files

# Small-data defaults: few shuffle partitions, no UI, Delta's log replay on one partition.
LOCAL_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.databricks.delta.properties.defaults.enableDeletionVectors": "true",
    "spark.databricks.delta.retentionDurationCheck.enabled": "false",
    "spark.sql.streaming.numRecentProgressUpdates": "1000",
    "spark.sql.session.timeZone": "UTC",
    # Each flow's jobs run in a scheduler pool of their own (executor._jobs_named_after), and pools share the
    # task slots: a continuous update's apply flow is not queued behind every small batch of the other flows.
    "spark.scheduler.mode": "FAIR",
    # Inferring constraints through many CASE WHEN / filter expressions (expectations, rule flags) can take
    # the optimizer minutes to hours; the inferred filters buy nothing for these plans.
    "spark.sql.constraintPropagation.enabled": "false",
    # Projections, predicates and orderings outside whole-stage code generation are interpreted instead of
    # generated per task. Generating them was 17% of a warm update's CPU samples (Java Flight Recorder:
    # GenerateUnsafeProjection building code for the nested schema of Delta's log replay, whose text a regex
    # then scans), on rows too few to repay it. Measured in one warm process, alternately, on the demo's
    # storage (bench/update_cpu.py's workload, 3 rounds): update 92.5 -> 68.3 s, CPU 81.1 -> 60.1 s;
    # Delta append + read cycles 10.3 -> 8.3 s. Whole-stage code generation (the big data paths) is kept.
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    # Python workers (UDFs, Python data sources) must connect back within this time; on a busy two-core
    # machine the default 15 s is not always enough.
    "spark.python.authenticate.socketTimeout": "180s",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.memory": "4g",
    # The JIT's options (JIT_OPTIONS) and then LOCALDLT_JAVA_OPTIONS are appended to these.
    # The JIT's code cache stays at its default (240 MB): 512 MB made the bench's batch-pipeline update 58%
    # slower (190 s vs 120 s, bench/bench_bronze.py's storage at scale 0.1, one run each, 2026-11-26).
    "spark.driver.extraJavaOptions": "-XX:+UseG1GC -Dlog4j2.configurationFile="
    + str(Path(__file__).with_name("log4j2.properties")),
    "spark.sql.warehouse.dir": os.path.join(os.environ.get("TMPDIR", "/tmp"), "localdlt-warehouse"),
}


SPARK_LOG_ENV = "LOCALDLT_SPARK_LOG"


def spark_log_file() -> Path:
    """Where this process's Spark JVM writes its errors with their Java stack traces (log4j2.properties):
    $LOCALDLT_SPARK_LOG, else <tmp>/localdlt-logs/spark-<pid>.log."""
    env = os.environ.get(SPARK_LOG_ENV)
    if env:
        return Path(env)
    return Path(tempfile.gettempdir()) / "localdlt-logs" / f"spark-{os.getpid()}.log"


def _private_parent(path: Path) -> Path:
    """`path`, its folder created readable by this user only (error texts may quote row values)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


# The driver JVM's JIT compilers. "full" is HotSpot's default (C1, then C2 for hot code); "quick" stops at
# C1: less compilation, slower compiled code. Measured back to back on the same data (2026-11-26, 2 cores):
# one `dlt run` of bench_runtime's example, no-change update 12.3 -> 9.0 s after the JVM start and cold
# update 80 -> 55 s with "quick" (C2 spent 14 s of CPU in the no-change update); but bench_bronze at scale
# 0.1, a process running two pipelines for minutes, initial load 258 -> 305 s and update 175 -> 312 s.
# So "quick" for one short update (the default of `dlt run`), "full" for long processes (the default here).
# "quick" keeps the code cache of "full" (240 MB): C1 alone would get 48 MB, which a long update fills
# (a flow then dies with "Out of space in CodeCache", seen at bench_bronze's scale 0.1).
JIT_OPTIONS = {"quick": "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m", "full": ""}
JIT_ENV = "LOCALDLT_JIT"


def jit_mode(requested: str | None = None, default: str = "full") -> str:
    """The JIT mode to start the JVM with: `requested`, else $LOCALDLT_JIT, else `default`."""
    mode = (requested or os.environ.get(JIT_ENV) or default).strip().lower()
    if mode not in JIT_OPTIONS:
        source = "requested" if requested else f"${JIT_ENV}"
        raise PipelineError(
            f"JIT mode {mode!r} ({source}) is not one of {', '.join(JIT_OPTIONS)}: 'quick' for short "
            "runs (C1 only), 'full' for long ones (C1 and C2)."
        )
    return mode


def get_spark(
    app_name: str = "localdlt", conf: Mapping[str, str] | None = None, jit: str | None = None
) -> SparkSession:
    """The process's Spark session, started on first use with Delta Lake and local settings.

    `jit` ("quick" or "full", see JIT_OPTIONS; default $LOCALDLT_JIT, else "full") applies when this call
    starts the JVM; a running session keeps the JIT it started with.
    """
    mode = jit_mode(jit)
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):  # on Databricks: its session, its settings
        return SparkSession.builder.getOrCreate()
    active = SparkSession.getActiveSession()
    if active is not None:
        for key, value in (conf or {}).items():
            active.conf.set(key, value)
        return active
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # stay on loopback, and no hostname warning
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    jars = jar_files()
    fs_conf = localfs.spark_conf(jars)
    settings = {**LOCAL_CONF, **fs_conf, **(conf or {})}
    if "spark.driver.extraClassPath" in fs_conf:  # a caller's class path extends the jar's, never drops it
        paths = [fs_conf["spark.driver.extraClassPath"], settings["spark.driver.extraClassPath"]]
        settings["spark.driver.extraClassPath"] = os.pathsep.join(dict.fromkeys(paths))
    # class-data sharing (a faster JVM start), then the user's own options, last so that they win
    extra = [
        f"-Dlocaldlt.log.file={_private_parent(spark_log_file())}",
        jvm_archive_options.java_options(jar_dir(), jars),
        JIT_OPTIONS[mode],
        os.environ.get("LOCALDLT_JAVA_OPTIONS", ""),
    ]
    java_options = " ".join([settings["spark.driver.extraJavaOptions"], *(o for o in extra if o.strip())])
    settings["spark.driver.extraJavaOptions"] = java_options
    builder = SparkSession.builder.master(os.environ.get("LOCALDLT_MASTER", "local[2]")).appName(app_name)
    builder = builder.config("spark.jars", ",".join(jars))
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
