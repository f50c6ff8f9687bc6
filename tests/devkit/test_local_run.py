"""The local runner reads its pipelines from the bundle's resource files: local and deployed runs cannot
drift (same source files, same configuration)."""

from __future__ import annotations

import glob
from pathlib import Path

import yaml

from inventory_devkit.local_run import pipeline_specs

REPO = Path(__file__).resolve().parents[2]


def test_local_runner_takes_libraries_and_configuration_from_the_resource_files():
    specs = {s.key: s for s in pipeline_specs("dev")}
    for key, spec in specs.items():
        resource = yaml.safe_load((REPO / "resources" / f"{key}.pipeline.yml").read_text())
        declared = resource["resources"]["pipelines"][key]
        # the same files as the bundle's library globs, nothing else
        globs = [lib["glob"]["include"] for lib in declared["libraries"]]
        matched = [Path(f) for g in globs for f in glob.glob(str(REPO / "resources" / g), recursive=True)]
        expected = sorted(p.resolve() for p in matched if p.suffix == ".py" and "__pycache__" not in p.parts)
        assert sorted(p.resolve() for p in spec.libraries) == expected
        # the same configuration keys, resolved for the target; the tables' configuration is this checkout's
        assert set(spec.configuration) == set(declared["configuration"])
        assert spec.config_path == str(REPO / "conf" / "tables.yml")
        assert spec.continuous == bool(declared.get("continuous", False))
    every_file = sorted(p.resolve() for p in (REPO / "pipelines").rglob("*.py"))
    assert sorted(p.resolve() for s in specs.values() for p in s.libraries) == every_file
    # the triggered pipeline runs first (its tables are the references of the others)
    assert [s.continuous for s in pipeline_specs("dev")] == [False, True]


def test_the_pipeline_environment_is_installed_or_put_on_the_path(tmp_path, monkeypatch):
    """What `environment.dependencies` installs on Databricks: a local project not installed here goes on
    the path of this process and of Spark's Python workers; a missing requirement is named."""
    import dataclasses
    import sys

    import pytest

    from inventory_bronze.errors import ConfigError
    from inventory_devkit.local_run import install_environment

    project_dir = tmp_path / "other_project"
    (project_dir / "src" / "other_package").mkdir(parents=True)
    (project_dir / "pyproject.toml").write_text("[project]\nname = 'other-project'\n")
    (project_dir / "src" / "other_package" / "__init__.py").write_text("VALUE = 42\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", "")
    spec = dataclasses.replace(pipeline_specs("dev")[0], dependencies=(f"--editable {project_dir}", "pyyaml"))
    install_environment(spec)
    assert __import__("other_package").VALUE == 42
    assert str((project_dir / "src").resolve()) in __import__("os").environ["PYTHONPATH"].split(":")
    missing = dataclasses.replace(spec, dependencies=("no-such-dist-xyz==1.0",))
    with pytest.raises(ConfigError, match=r"environment dependency 'no-such-dist-xyz==1.0' is not installed"):
        install_environment(missing)
    sys.modules.pop("other_package", None)


def test_a_pipeline_not_in_the_bundle_is_one_line_naming_the_pipelines(spark, tmp_path, capsys):
    from inventory_bronze.cli import main

    assert main(["run", "--pipeline", "nope", "--storage", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: No pipeline ['nope'] in the bundle") and "inventory_bronze_cdc" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing written
