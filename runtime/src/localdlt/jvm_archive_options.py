"""Where the class-data sharing (AppCDS) archive of the Spark + Delta driver JVM is, and the JVM options that
use it: the classes a pipeline update loads, parsed and verified once, then mapped into every later JVM
instead of being loaded again from the jars.

On two cores this cuts Spark's start from about 10 s to 4-6 s and takes seconds off the first jobs of every
process (measured by `bench/bench_runtime.py`). The archive is specific to the Java binary, the pyspark
version and the jars, and its file name is a hash of them: when any of them changes, no archive matches
and Spark starts as it would without one until `scripts/setup` builds a new one (`localdlt.jvm_archive`).
A JVM that finds the archive unusable ignores it (`-Xshare:auto`); nothing depends on it but speed.
`LOCALDLT_JVM_ARCHIVE=off` disables it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
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
