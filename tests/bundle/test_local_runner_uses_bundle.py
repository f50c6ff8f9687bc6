"""The local runner reads its pipelines from the bundle's resource files: local and deployed runs cannot
drift (same source files, same configuration)."""

from __future__ import annotations

import glob
from pathlib import Path

import yaml

from inventory_bronze.local_run import pipeline_specs

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
        # the same configuration keys, resolved for the target; the source path is this checkout's src/
        assert set(spec.configuration) == set(declared["configuration"])
        assert spec.configuration["bundle.sourcePath"] == str(REPO / "src")
        assert spec.continuous == bool(declared.get("continuous", False))
    every_file = sorted(p.resolve() for p in (REPO / "pipelines").rglob("*.py"))
    assert sorted(p.resolve() for s in specs.values() for p in s.libraries) == every_file
    # the triggered pipeline runs first (its tables are the references of the others)
    assert [s.continuous for s in pipeline_specs("dev")] == [False, True]


def test_a_pipeline_not_in_the_bundle_is_one_line_naming_the_pipelines(spark, tmp_path, capsys):
    from inventory_bronze.cli import main

    assert main(["run", "--pipeline", "nope", "--storage", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: No pipeline ['nope'] in the bundle") and "inventory_bronze_cdc" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing written
