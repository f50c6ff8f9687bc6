"""Delta Lake's jars: taken from $LOCALDLT_JARS when set (a project's folder: checked, never filled), else
fetched once into the user's cache from a Maven repository, checked against its SHA-1."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from localdlt import jars
from localdlt.errors import PipelineError


def _repository(root: Path, corrupt: str | None = None) -> str:
    """A Maven repository on disk serving the installed delta-spark's artifacts (small stand-in files)."""
    for artifact in jars.delta_artifacts():
        folder = root / artifact.group.replace(".", "/") / artifact.name / artifact.version
        folder.mkdir(parents=True)
        data = f"jar of {artifact.name}".encode()
        (folder / artifact.file_name).write_bytes(data)
        digest = "0" * 40 if artifact.name == corrupt else hashlib.sha1(data).hexdigest()
        (folder / f"{artifact.file_name}.sha1").write_text(f"{digest}  {artifact.file_name}\n")
    return root.as_uri()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(jars.JARS_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "localdlt" / "jars"


def test_the_artifacts_match_the_installed_delta_spark_and_pyspark() -> None:
    import importlib.metadata

    import pyspark

    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    delta = importlib.metadata.version("delta-spark")
    names = [(a.group, a.name, a.version) for a in jars.delta_artifacts()]
    assert names == [
        ("io.delta", f"delta-spark_{spark_minor}_2.13", delta),
        ("io.delta", "delta-storage", delta),
    ]
    assert jars.delta_artifacts()[0].url(jars.MAVEN_CENTRAL) == (
        f"https://repo1.maven.org/maven2/io/delta/delta-spark_{spark_minor}_2.13/{delta}/"
        f"delta-spark_{spark_minor}_2.13-{delta}.jar"
    )


def test_first_use_fetches_into_the_user_cache_then_reuses_it(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(jars.REPO_ENV, _repository(tmp_path / "repo"))
    assert jars.jar_dir() == cache
    found = jars.jar_files()
    assert sorted(Path(j).name for j in found) == sorted(a.file_name for a in jars.delta_artifacts())
    assert "fetching" in capsys.readouterr().err
    monkeypatch.setenv(jars.REPO_ENV, (tmp_path / "gone").as_uri())  # no repository needed the second time
    assert jars.jar_files() == found
    assert "fetching" not in capsys.readouterr().err


def test_a_download_that_fails_its_checksum_is_not_kept(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage_jar = jars.delta_artifacts()[1]
    monkeypatch.setenv(jars.REPO_ENV, _repository(tmp_path / "repo", corrupt=storage_jar.name))
    with pytest.raises(PipelineError, match=f"{storage_jar.file_name}: SHA-1 .* does not match"):
        jars.jar_files()
    assert not (cache / storage_jar.file_name).exists()
    assert not list(cache.glob("*.part"))


def test_an_unreachable_repository_is_one_line_naming_what_to_set(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(jars.REPO_ENV, (tmp_path / "nowhere").as_uri())
    with pytest.raises(PipelineError) as err:
        jars.jar_files()
    assert "\n" not in str(err.value)
    assert jars.REPO_ENV in str(err.value) and jars.JARS_ENV in str(err.value)


def test_a_project_folder_without_delta_is_reported_not_filled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "project-jars"
    folder.mkdir()
    (folder / "some-driver.jar").write_bytes(b"jar")
    monkeypatch.setenv(jars.JARS_ENV, str(folder))
    with pytest.raises(PipelineError, match=f"No delta-spark jar in {folder} .*{jars.JARS_ENV}"):
        jars.jar_files()
    assert [p.name for p in folder.iterdir()] == ["some-driver.jar"]
