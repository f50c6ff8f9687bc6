"""The jars a local Spark session loads: Delta Lake's, matching the installed delta-spark and pyspark.

They are looked for in `$LOCALDLT_JARS`, a folder of jars that a project fills itself (and may add its own
to, such as a JDBC driver: every jar there is loaded). Without it they are in the user's cache
(`$XDG_CACHE_HOME/localdlt/jars/`, by default `~/.cache/localdlt/jars/`), which the first session fills from
Maven Central (`$LOCALDLT_MAVEN_REPO` names another repository, such as a mirror). Each download is
checked against the repository's SHA-1 and written under a temporary name first, so an interrupted
download is fetched again next time. `localdlt setup` fills the folder ahead of time.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.metadata
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from localdlt.errors import PipelineError

JARS_ENV = "LOCALDLT_JARS"
REPO_ENV = "LOCALDLT_MAVEN_REPO"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
SCALA = "2.13"


@dataclass(frozen=True)
class Artifact:
    group: str
    name: str
    version: str

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}.jar"

    def url(self, repository: str) -> str:
        return f"{repository.rstrip('/')}/{self.group.replace('.', '/')}/{self.name}/{self.version}/{self.file_name}"


def delta_artifacts() -> list[Artifact]:
    """Delta Lake's jars for the installed delta-spark (its Python package) and pyspark."""
    import pyspark

    try:
        delta = importlib.metadata.version("delta-spark")
    except importlib.metadata.PackageNotFoundError:
        raise PipelineError(
            "delta-spark is not installed: pip install delta-spark (localdlt needs it)."
        ) from None
    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    return [
        Artifact("io.delta", f"delta-spark_{spark_minor}_{SCALA}", delta),
        Artifact("io.delta", "delta-storage", delta),
    ]


def user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "localdlt" / "jars"


def jar_dir() -> Path:
    """The folder of jars the session loads: $LOCALDLT_JARS, else the user's cache."""
    env = os.environ.get(JARS_ENV)
    return Path(env) if env else user_cache()


def jar_files(fetch: bool = True) -> list[str]:
    """The jars to load, Delta Lake's among them: fetched into the user's cache when missing there (a folder
    named by $LOCALDLT_JARS is the project's: it is checked, never filled)."""
    folder = jar_dir()
    jars = sorted(glob.glob(str(folder / "*.jar")))
    if any("delta-spark" in Path(j).name for j in jars):
        return jars
    if os.environ.get(JARS_ENV):
        raise PipelineError(
            f"No delta-spark jar in {folder} (${JARS_ENV}): put Delta Lake's jars there, or unset "
            f"{JARS_ENV} to have localdlt fetch them into {user_cache()}."
        )
    if not fetch:
        raise PipelineError(f"No delta-spark jar in {folder}: run `localdlt setup`.")
    fetch_delta(folder)
    return sorted(glob.glob(str(folder / "*.jar")))


def fetch_delta(folder: Path) -> list[Path]:
    """Download Delta Lake's jars into `folder` (those already there are kept)."""
    repository = os.environ.get(REPO_ENV) or MAVEN_CENTRAL
    folder.mkdir(parents=True, exist_ok=True)
    fetched = []
    for artifact in delta_artifacts():
        target = folder / artifact.file_name
        if not target.is_file():
            print(
                f"localdlt: fetching {artifact.file_name} from {repository} into {folder} (once)",
                file=sys.stderr,
            )
            _download(artifact, repository, target)
        fetched.append(target)
    return fetched


def _download(artifact: Artifact, repository: str, target: Path) -> None:
    url = artifact.url(repository)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
        with urllib.request.urlopen(url + ".sha1", timeout=60) as response:
            expected = response.read().decode().split()[0].strip().lower()
    except (urllib.error.URLError, OSError) as err:
        raise PipelineError(
            f"Could not fetch {artifact.file_name} from {url} ({err}): check the network, set "
            f"{REPO_ENV} to a Maven mirror, or put Delta Lake's jars in a folder named by {JARS_ENV}."
        ) from None
    actual = hashlib.sha1(data).hexdigest()
    if actual != expected:
        raise PipelineError(f"{url}: SHA-1 {actual} does not match the repository's {expected}; not used.")
    partial = target.with_name(target.name + ".part")
    partial.write_bytes(data)
    partial.replace(target)
