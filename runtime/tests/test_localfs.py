"""Hadoop's local file system without a process per file operation (localdlt.localfs): the session's `file:`
file systems are the in-process ones, they behave as Hadoop's (permissions, link status, atomic rename,
checksums), and a Delta commit through them runs no `chmod` or `readlink` process while Hadoop's own
classes, in the same JVM, do."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from py4j.protocol import Py4JJavaError

from localdlt import localfs
from localdlt.jars import jar_files

REPO = Path(__file__).resolve().parents[2]


def spark_gateway(jvm):  # type: ignore[no-untyped-def]
    from pyspark import SparkContext

    return SparkContext._gateway


def _java_class(err: Py4JJavaError) -> str:
    return str(err.java_exception.getClass().getName())


@pytest.fixture
def hadoop(spark):  # type: ignore[no-untyped-def]
    jvm = spark._jvm
    return jvm, spark._jsc.hadoopConfiguration()


def test_setup_built_the_jar_and_the_session_uses_it(hadoop) -> None:  # type: ignore[no-untyped-def]
    assert localfs.spark_conf(jar_files()), "no localfs jar among the session's jars: run scripts/setup"
    jvm, conf = hadoop
    uri = jvm.java.net.URI("file:///")
    assert jvm.org.apache.hadoop.fs.FileSystem.get(uri, conf).getClass().getName().endswith("$FileSystemApi")
    fc = jvm.org.apache.hadoop.fs.FileContext.getFileContext(uri, conf)
    assert fc.getDefaultFileSystem().getClass().getName().endswith("$FileContextApi")


def test_permissions_and_link_status_as_hadoop_gives_them(hadoop, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    jvm, conf = hadoop
    fs_pkg = jvm.org.apache.hadoop.fs
    fs = fs_pkg.FileSystem.get(jvm.java.net.URI("file:///"), conf)
    data = tmp_path / "data.bin"
    out = fs.create(
        fs_pkg.Path(data.as_uri()), fs_pkg.permission.FsPermission(0o640), True, 4096, 1, 1024, None
    )
    out.write(bytearray(b"abc"))
    out.close()
    assert stat.S_IMODE(data.stat().st_mode) == 0o640
    assert (tmp_path / ".data.bin.crc").exists()  # checksums as with Hadoop's LocalFileSystem
    fs.setPermission(fs_pkg.Path(data.as_uri()), fs_pkg.permission.FsPermission(0o600))
    assert stat.S_IMODE(data.stat().st_mode) == 0o600

    plain = fs.getFileLinkStatus(fs_pkg.Path(data.as_uri()))
    assert not plain.isSymlink() and plain.getLen() == 3 and plain.isFile()
    link = tmp_path / "link.bin"
    link.symlink_to(data)
    hadoops = fs_pkg.RawLocalFileSystem()  # Hadoop's own class: the reference for a link
    hadoops.initialize(jvm.java.net.URI("file:///"), conf)
    for path in (data, link, tmp_path):
        ours, theirs = (f.getFileLinkStatus(fs_pkg.Path(path.as_uri())) for f in (fs, hadoops))
        assert str(ours.toString()) == str(theirs.toString()), path
    with pytest.raises(Py4JJavaError) as missing:
        fs.getFileLinkStatus(fs_pkg.Path((tmp_path / "none").as_uri()))
    assert _java_class(missing.value) == "java.io.FileNotFoundException"


def test_file_context_rename_is_atomic_and_refuses_an_existing_target(hadoop, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """What Delta's log store and Spark's checkpoints rely on: rename without overwrite never replaces."""
    jvm, conf = hadoop
    fs_pkg = jvm.org.apache.hadoop.fs
    fc = fs_pkg.FileContext.getFileContext(jvm.java.net.URI("file:///"), conf)
    for name, text in (("a.json", "first"), ("b.json", "second")):
        (tmp_path / name).write_text(text)
    options = spark_gateway(jvm).new_array(fs_pkg.Options.Rename, 1)
    options[0] = fs_pkg.Options.Rename.NONE
    with pytest.raises(Py4JJavaError) as exists:
        fc.rename(
            fs_pkg.Path((tmp_path / "a.json").as_uri()), fs_pkg.Path((tmp_path / "b.json").as_uri()), options
        )
    assert _java_class(exists.value) == "org.apache.hadoop.fs.FileAlreadyExistsException"
    assert (tmp_path / "b.json").read_text() == "second"
    fc.rename(
        fs_pkg.Path((tmp_path / "a.json").as_uri()), fs_pkg.Path((tmp_path / "c.json").as_uri()), options
    )
    assert (tmp_path / "c.json").read_text() == "first" and not (tmp_path / "a.json").exists()


def test_a_delta_commit_runs_no_chmod_or_readlink_process(tmp_path: Path) -> None:
    """`chmod` and `readlink` on the PATH of a new session log their arguments: a Delta table written through
    the session's file system never calls them; Hadoop's own RawLocalFileSystem in the same JVM does."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for tool in ("chmod", "readlink"):
        real = subprocess.run(["which", tool], capture_output=True, text=True, check=True).stdout.strip()
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\nexec {real} "$@"\n')
        script.chmod(0o755)
    table, control = tmp_path / "table", tmp_path / "control"
    control.mkdir()
    (control / "f").write_text("x")
    code = textwrap.dedent(
        f"""
        from localdlt.session import get_spark
        spark = get_spark("localfs-test")
        for i in range(2):
            spark.range(5).write.format("delta").mode("append").save({str(table)!r})
        assert spark.read.format("delta").load({str(table)!r}).count() == 10
        jvm = spark._jvm
        raw = jvm.org.apache.hadoop.fs.RawLocalFileSystem()
        raw.initialize(jvm.java.net.URI("file:///"), spark._jsc.hadoopConfiguration())
        raw.setPermission(jvm.org.apache.hadoop.fs.Path({(control / "f").as_uri()!r}),
                          jvm.org.apache.hadoop.fs.permission.FsPermission(0o600))
        spark.stop()
        """
    )
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYSPARK_PYTHON": sys.executable,
    }
    env.pop(localfs.ENV_SWITCH, None)
    subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, check=True, timeout=300)
    calls = log.read_text().splitlines() if log.exists() else []
    assert any(str(control) in c for c in calls), f"the control call did not reach the logging chmod: {calls}"
    assert [c for c in calls if str(table) in c] == []
