"""`localdlt setup`: fill the jar folder ahead of time, so the first run starts without downloads."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from localdlt.cli.errors import handled


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "setup",
        help="fetch Delta Lake's jars and build the local file system classes and the JVM archive",
        description="Fill the jar folder the session loads: Delta Lake's jars (from Maven Central, or "
        "$LOCALDLT_MAVEN_REPO), the local file-system classes (needs javac) and the JVM class-data archive "
        "that makes Spark start faster. What is there already is kept.",
    )
    parser.add_argument(
        "--jars",
        type=Path,
        metavar="DIR",
        help="the jar folder (default: $LOCALDLT_JARS, else the user's cache)",
    )
    parser.set_defaults(handler=handled(_setup))


def _setup(args: argparse.Namespace) -> int:
    import subprocess

    from localdlt import jars, jvm_archive, localfs

    if args.jars is not None:
        os.environ[jars.JARS_ENV] = str(args.jars.resolve())  # also for the archive's training run
    folder = jars.jar_dir()
    print(f"setup: jar folder {folder}", flush=True)
    for jar in jars.fetch_delta(folder):
        print(f"setup: {jar.name}", flush=True)
    try:
        built = localfs.build(folder)
    except subprocess.CalledProcessError as err:
        print(
            f"setup: javac failed, Spark keeps Hadoop's local file system: {err.stderr.strip()}", flush=True
        )
    else:
        print(f"setup: {built.name}" if built else "setup: no javac; Spark keeps Hadoop's local file system")
    archive = jvm_archive.build()
    print(f"setup: {archive}" if archive else "setup: no JVM archive (see above)", flush=True)
    print("setup: done", flush=True)
    return 0
