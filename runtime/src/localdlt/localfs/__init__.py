"""Hadoop's local file system without a process per file operation (`NioLocalFileSystems.java`).

Without Hadoop's native library (not shipped with pyspark), every file Spark or Delta creates on local
disk costs a `chmod` process and every rename (each Delta commit, each streaming checkpoint file, and
their .crc files) two `readlink` processes: about 1 400 processes and 13 s of CPU in one update of the
demo on two cores. The Java classes here do those two operations in-process with java.nio; everything
else stays Hadoop's own LocalFileSystem / LocalFs, .crc checksums included.

`scripts/setup` compiles them into the jar folder (`python -m localdlt.localfs DIR`); the session uses
them when the jar is there (`spark_conf`). Without a JDK's `javac` nothing is built and Spark uses Hadoop's
classes as before. `LOCALDLT_LOCALFS=off` turns them off (A/B measurements).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SOURCE = Path(__file__).with_name("NioLocalFileSystems.java")
JAR_PREFIX = "localdlt-localfs-"
ENV_SWITCH = "LOCALDLT_LOCALFS"
_CLASS = "localdlt.localfs.NioLocalFileSystems"
CONF = {
    "spark.hadoop.fs.file.impl": f"{_CLASS}$FileSystemApi",
    "spark.hadoop.fs.AbstractFileSystem.file.impl": f"{_CLASS}$FileContextApi",
}


def _spark_jars() -> list[Path]:
    import pyspark

    return sorted(Path(pyspark.__file__).parent.joinpath("jars").glob("*.jar"))


def jar_name() -> str:
    """The jar's file name: a hash of the source and the Hadoop jars it is compiled against."""
    parts = [SOURCE.read_text(), *(p.name for p in _spark_jars() if "hadoop" in p.name)]
    return JAR_PREFIX + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16] + ".jar"


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "").lower() not in ("off", "0", "false", "no")


def spark_conf(jars: list[str]) -> dict[str, str]:
    """The session settings that route `file:` paths through these classes, when their jar is among
    `jars`: on the driver's class path, as Spark needs a `file:` file system before it loads `spark.jars`."""
    found = [j for j in jars if Path(j).name == jar_name()]
    if enabled() and found:
        return {**CONF, "spark.driver.extraClassPath": found[0]}
    return {}


def build(folder: Path) -> Path | None:
    """Compile the classes into FOLDER/<jar_name()> (once; older builds removed). None without javac."""
    target = folder / jar_name()
    if target.exists():
        return target
    home = os.environ.get("JAVA_HOME")
    javac = (shutil.which("javac", path=str(Path(home) / "bin")) if home else None) or shutil.which("javac")
    if javac is None:
        return None
    classpath = os.pathsep.join(str(p) for p in _spark_jars())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "classes"
        subprocess.run(
            [javac, "--release", "17", "-nowarn", "-d", str(out), "-cp", classpath, str(SOURCE)],
            check=True,
            capture_output=True,
            text=True,
        )
        staged = Path(tmp) / target.name
        with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as jar:
            jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
            for cls in sorted(out.rglob("*.class")):
                jar.write(cls, cls.relative_to(out).as_posix())
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(JAR_PREFIX + "*.jar"):
            old.unlink()
        shutil.move(str(staged), target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localdlt.localfs",
        description="Compile the in-process local file system classes for Spark into a jar folder.",
    )
    parser.add_argument("folder", type=Path, help="the jar folder the session loads (e.g. .cache/jars)")
    args = parser.parse_args(argv)
    try:
        jar = build(args.folder)
    except subprocess.CalledProcessError as err:
        print(
            f"localfs: javac failed, Spark keeps Hadoop's local file system: {err.stderr.strip()}",
            file=sys.stderr,
        )
        return 0
    if jar is None:
        print("localfs: no javac (a JDK's compiler); Spark keeps Hadoop's local file system", file=sys.stderr)
    return 0
