"""The runtime stands alone: its wheel holds localdlt only and depends on Spark and Delta Lake only, and
installed by itself in a fresh virtual environment (no project on the path) it runs a pipeline with its
own command, fetching Delta Lake's jars on first use."""

from __future__ import annotations

import email
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from localdlt import jars

RUNTIME = Path(__file__).resolve().parents[1]

PIPELINE = """\
from pyspark import pipelines as dp


@dp.materialized_view
@dp.expect_or_drop("positive", "id > 0")
def numbers():
    return spark.range(-2, 5)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(RUNTIME)],
        check=True,
        cwd=out,
    )
    (found,) = out.glob("localdlt-*.whl")
    return found


def test_the_wheel_holds_the_runtime_alone(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"localdlt"}
    # its resources: the JVM's logging set-up, the monitoring queries, the local file system's source
    for resource in ("log4j2.properties", "monitoring/data_quality.sql", "localfs/NioLocalFileSystems.java"):
        assert f"localdlt/{resource}" in names
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    meta = email.message_from_string(archive.read(metadata).decode())
    assert meta["Name"] == "localdlt"
    required = {
        r.split(";")[0].split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip().lower()
        for r in meta.get_all("Requires-Dist")
        if "extra ==" not in r
    }
    assert required == {"pyspark", "delta-spark", "pyarrow", "pandas", "pyyaml"}
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = archive.read(entry_points).decode()
    assert "localdlt = localdlt.cli:main" in text and "[pytest11]" in text


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with the runtime's wheel and what it depends on, installed by pip."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            f"{wheel}[test]",
        ],
        check=True,
        timeout=900,
    )
    return venv


def _maven_repository(root: Path) -> str:
    """A Maven repository on disk with Delta Lake's real jars (copied from this checkout's jar folder), so
    that the fresh installation's first run fetches them the way it would from Maven Central."""
    source = jars.jar_dir()
    for artifact in jars.delta_artifacts():
        folder = root / artifact.group.replace(".", "/") / artifact.name / artifact.version
        folder.mkdir(parents=True)
        data = (source / artifact.file_name).read_bytes()
        (folder / artifact.file_name).write_bytes(data)
        (folder / f"{artifact.file_name}.sha1").write_text(hashlib.sha1(data).hexdigest())
    return root.as_uri()


def _alone(venv: Path, tmp: Path) -> dict[str, Any]:
    """The environment of a user who installed only the runtime: no project on the path, no jar folder."""
    env = {
        k: v for k, v in os.environ.items() if k not in (jars.JARS_ENV, "PYTHONPATH", "PYSPARK_DRIVER_PYTHON")
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PYSPARK_PYTHON=str(venv / "bin" / "python"),
        XDG_CACHE_HOME=str(tmp / "cache"),
        **{jars.REPO_ENV: _maven_repository(tmp / "repository")},
    )
    return env


@pytest.mark.slow
def test_installed_alone_it_runs_a_pipeline_with_its_own_command(fresh_venv: Path, tmp_path: Path) -> None:
    env = _alone(fresh_venv, tmp_path)
    python = str(fresh_venv / "bin" / "python")
    nothing_else = subprocess.run(
        [
            python,
            "-c",
            "import importlib.util as u; print([m for m in ('inventory_bronze', 'inventory_devkit') if u.find_spec(m)])",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert nothing_else.stdout.strip() == "[]"
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "numbers.py").write_text(PIPELINE)
    done = subprocess.run(
        ["localdlt", "run", "pipeline", "--storage", "storage"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "COMPLETED" in done.stdout
    assert "fetching" in done.stderr  # Delta Lake's jars, on first use, into the user's cache
    assert sorted(p.name for p in (tmp_path / "cache" / "localdlt" / "jars").glob("*.jar")) == sorted(
        a.file_name for a in jars.delta_artifacts()
    )
    check = subprocess.run(
        [
            python,
            "-c",
            "from localdlt.session import get_spark; s = get_spark();"
            "print(sorted(r.id for r in s.read.format('delta').load('storage/tables/numbers').collect()))",
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert check.stdout.strip().splitlines()[-1] == "[1, 2, 3, 4]", check.stderr[-2000:]
    help_text = subprocess.run([python, "-m", "localdlt", "--help"], env=env, capture_output=True, text=True)
    assert help_text.returncode == 0 and "validate" in help_text.stdout


@pytest.mark.slow
def test_installed_alone_its_pytest_plugin_runs_the_worked_example(fresh_venv: Path, tmp_path: Path) -> None:
    """A project's own test suite (here the README's worked example, copied out of this repository) gets
    the plugin's fixtures from the installation alone: no conftest, no configuration."""
    example = tmp_path / "project"
    shutil.copytree(RUNTIME / "examples" / "testing", example)
    done = subprocess.run(
        [
            str(fresh_venv / "bin" / "python"),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "cleaned_checked_and_summed",
        ],
        env=_alone(fresh_venv, tmp_path),
        capture_output=True,
        text=True,
        cwd=example,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout
