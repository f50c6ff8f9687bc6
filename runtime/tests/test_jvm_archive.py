"""The JVM class-data archive: keyed by what it depends on, used when built, ignored when switched off, and
really mapped by the driver JVM of a new Spark session (classes come from the shared archive)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from localdlt import jvm_archive_options
from localdlt.jars import jar_dir, jar_files

REPO = Path(__file__).resolve().parents[2]


def _jars(folder: Path, sizes: dict[str, int]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, size in sizes.items():
        (folder / name).write_bytes(b"x" * size)
    return [str(folder / n) for n in sizes]


def test_the_key_changes_with_the_jars(tmp_path: Path) -> None:
    jars = _jars(tmp_path / "jars", {"delta-spark_2.13-4.4.0.jar": 10, "postgresql-42.jar": 5})
    key = jvm_archive_options.archive_key(jars)
    assert key is not None and key == jvm_archive_options.archive_key(list(reversed(jars)))
    (tmp_path / "jars" / "postgresql-42.jar").write_bytes(b"y" * 6)  # a different jar of the same name
    assert jvm_archive_options.archive_key(jars) != key
    assert jvm_archive_options.archive_key(jars[:1]) != jvm_archive_options.archive_key(jars)


def test_options_use_the_archive_only_when_built_and_not_switched_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(jvm_archive_options.ENV_DUMP, raising=False)
    monkeypatch.delenv(jvm_archive_options.ENV_SWITCH, raising=False)
    folder = tmp_path / "cache" / "jars"
    jars = _jars(folder, {"delta-spark_2.13-4.4.0.jar": 10})
    assert jvm_archive_options.java_options(folder, jars) == ""  # not built: Spark starts as without one
    path = jvm_archive_options.archive_path(folder, jars)
    assert path is not None and path.parent == tmp_path / "cache" / "jvm"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"archive")
    assert f"-XX:SharedArchiveFile={path}" in jvm_archive_options.java_options(folder, jars)
    monkeypatch.setenv(jvm_archive_options.ENV_SWITCH, "off")
    assert jvm_archive_options.java_options(folder, jars) == ""
    monkeypatch.setenv(jvm_archive_options.ENV_DUMP, str(tmp_path / "new.jsa"))
    assert jvm_archive_options.java_options(folder, jars).startswith(
        f"-XX:ArchiveClassesAtExit={tmp_path / 'new.jsa'}"
    )


def _session_class_sources(tmp_path: Path, extra_env: dict[str, str]) -> str:
    """Start a Spark session in a new process, run one query, and return the JVM's class-load log."""
    log = tmp_path / "classload.log"
    env = {
        **os.environ,
        **extra_env,
        "JAVA_TOOL_OPTIONS": f"-Xlog:class+load=info:file={log}",
        "PYSPARK_PYTHON": sys.executable,
    }
    code = (
        "from localdlt.session import get_spark\n"
        "spark = get_spark('archive-test')\n"
        "assert spark.range(3).count() == 3\n"
        "spark.stop()\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, check=True, timeout=300)
    return log.read_text()


def test_a_new_session_loads_its_classes_from_the_archive(tmp_path: Path) -> None:
    """scripts/setup built the archive for these jars; a new driver JVM maps it."""
    path = jvm_archive_options.archive_path(jar_dir(), jar_files())
    assert path is not None and path.is_file(), "no archive for the current jars: run scripts/setup"
    shared = _session_class_sources(tmp_path, {jvm_archive_options.ENV_SWITCH: "on"})
    from_archive = [line for line in shared.splitlines() if "source: shared objects file (top)" in line]
    assert any(
        " org.apache.spark.sql." in line for line in from_archive
    )  # Spark's classes, not only the JDK's
    unshared = _session_class_sources(tmp_path, {jvm_archive_options.ENV_SWITCH: "off"})
    assert "shared objects file (top)" not in unshared
