"""Reading a Databricks Asset Bundle (`localdlt.bundle`): includes, the target's overrides, variables and
`${...}` references, library globs, and the problems named with their file and key; a pipeline's
environment dependencies (`localdlt.environment`). No Spark."""

from __future__ import annotations

import os
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from localdlt.bundle import (
    BundleError,
    PipelineSpec,
    bundle_files,
    check_references,
    load_bundle,
    merged_config,
)
from localdlt.environment import DependencyError, install_environment
from localdlt.errors import PipelineError

USER = "jane.doe@example.com"

ROOT_FILE = """
bundle:
  name: shop
include:
  - resources/*.yml
variables:
  scope:
    description: secret scope
    default: shop-dev
  schema:
    description: where the tables go
  settings:
    description: a complex variable
    type: complex
    default:
      region: eu
targets:
  dev:
    default: true
    mode: development
    variables:
      schema: ${workspace.current_user.short_name}_shop
  prod:
    mode: production
    variables:
      schema: shop
    resources:
      pipelines:
        orders:
          continuous: true
          configuration:
            shop.mode: prod
"""

PIPELINE_FILE = """
resources:
  pipelines:
    orders:
      name: orders-${bundle.target}
      catalog: main
      schema: ${var.schema}
      libraries:
        - glob:
            include: ../pipelines/orders/**
        - file:
            path: ../shared/helpers.py
        - notebook:
            path: ../shared/notebook
      configuration:
        shop.scope: ${var.scope}
        shop.mode: dev
        shop.root: ${workspace.file_path}
        shop.region: ${var.settings.region}
        shop.bundle: ${bundle.name}
        shop.user: ${workspace.current_user.userName}
        shop.enabled: true
      environment:
        dependencies:
          - --editable ${workspace.file_path}/lib
"""

JOB_FILE = """
resources:
  jobs:
    nightly:
      name: nightly
      tasks:
        - task_key: update
          pipeline_task:
            pipeline_id: ${resources.pipelines.orders.id}
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    files = {
        "databricks.yml": ROOT_FILE,
        "resources/orders.pipeline.yml": PIPELINE_FILE,
        "resources/nightly.job.yml": JOB_FILE,
        "pipelines/orders/orders.py": "# orders\n",
        "pipelines/orders/sub/returns.py": "# returns\n",
        "pipelines/orders/README.md": "not a library\n",
        "pipelines/orders/__pycache__/orders.cpython-311.py": "# cache\n",
        "shared/helpers.py": "# helpers\n",
        "shared/notebook.py": "# a notebook source\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text).lstrip())
    return tmp_path


def _edit(root: Path, name: str, old: str, new: str) -> None:
    path = root / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_pipeline_resource_resolved_for_the_default_target(root: Path) -> None:
    bundle = load_bundle(root, "dev", user=USER)
    spec = bundle.pipeline("orders")
    top = root.resolve()
    assert (bundle.name, bundle.target, bundle.targets, bundle.mode) == (
        "shop",
        "dev",
        ("dev", "prod"),
        "development",
    )
    assert spec.name == "orders-dev" and spec.schema == "jane_doe_shop" and spec.catalog == "main"
    assert spec.libraries == sorted(
        [
            top / "pipelines/orders/orders.py",
            top / "pipelines/orders/sub/returns.py",
            top / "shared/helpers.py",
            top / "shared/notebook.py",
        ]
    )
    assert spec.configuration == {
        "shop.scope": "shop-dev",
        "shop.mode": "dev",
        "shop.root": str(top),
        "shop.region": "eu",
        "shop.bundle": "shop",
        "shop.user": USER,
        "shop.enabled": "true",
    }
    assert spec.dependencies == (f"--editable {top}/lib",)
    assert spec.continuous is False and spec.development is True
    assert spec.source == top / "resources/orders.pipeline.yml"
    assert bundle.where(("resources", "pipelines", "orders", "schema")) == (
        "resources/orders.pipeline.yml: resources.pipelines.orders.schema"
    )
    assert bundle_files(root) == [top / "databricks.yml", *sorted((top / "resources").glob("*.yml"))]
    assert set(merged_config(root)["resources"]) == {"pipelines", "jobs"}
    assert check_references(bundle) == []


def test_target_overrides_merge_over_the_resource(root: Path) -> None:
    spec = load_bundle(root, "prod", user=USER).pipeline("orders")
    assert spec.name == "orders-prod" and spec.schema == "shop" and spec.continuous is True
    assert spec.configuration["shop.mode"] == "prod" and spec.configuration["shop.scope"] == "shop-dev"
    assert spec.development is False


def test_variables_can_be_overridden_and_unknown_overrides_are_refused(root: Path) -> None:
    bundle = load_bundle(root, "dev", variables={"scope": "other-scope"}, user=USER)
    assert bundle.pipeline("orders").configuration["shop.scope"] == "other-scope"
    with pytest.raises(BundleError, match="no_such_variable"):
        load_bundle(root, "dev", variables={"no_such_variable": 1})


def test_unknown_target_or_pipeline_is_an_error_naming_the_known_ones(root: Path) -> None:
    with pytest.raises(BundleError, match="no target 'staging'.*dev, prod"):
        load_bundle(root, "staging")
    with pytest.raises(BundleError, match="no pipeline 'nope' in resources.pipelines; pipelines are: orders"):
        load_bundle(root, "dev").pipeline("nope")
    assert issubclass(BundleError, PipelineError)  # the CLI prints it as one line


def test_undeclared_variable_is_named_with_its_file_and_key(root: Path) -> None:
    name = "resources/orders.pipeline.yml"
    _edit(root, name, "${var.scope}", "${var.scop}")
    with pytest.raises(BundleError) as raised:
        load_bundle(root, user=USER)
    message = str(raised.value)
    assert name in message and "configuration.shop.scope" in message and "'scop'" in message
    problems = check_references(load_bundle(root, user=USER, strict=False))
    assert any("'scop', which is not declared" in p for p in problems)


def test_variable_without_a_value_in_one_target_is_reported_for_that_target(root: Path) -> None:
    _edit(root, "databricks.yml", "      schema: ${workspace.current_user.short_name}_shop\n", "")
    problems = check_references(load_bundle(root, "prod", user=USER))
    assert any(
        "'schema' has no default and target 'dev' sets no value" in p and "(target dev)" in p
        for p in problems
    )
    with pytest.raises(BundleError, match="schema"):
        load_bundle(root, "dev", user=USER)


def test_unused_variable_is_reported(root: Path) -> None:
    _edit(
        root,
        "databricks.yml",
        "variables:\n",
        "variables:\n  spare:\n    description: unused\n    default: x\n",
    )
    problems = check_references(load_bundle(root, user=USER))
    assert any("'spare' is declared but never used" in p for p in problems)


def test_broken_resource_reference_is_reported(root: Path) -> None:
    name = "resources/nightly.job.yml"
    _edit(root, name, "pipelines.orders.id", "pipelines.ordres.id")
    problems = check_references(load_bundle(root, user=USER))
    assert any(
        p.startswith(f"{name}: resources.jobs.nightly.tasks[0].pipeline_task.pipeline_id")
        and "${resources.pipelines.ordres.id} points at nothing" in p
        for p in problems
    )


def test_library_glob_matching_nothing_is_reported(root: Path) -> None:
    name = "resources/orders.pipeline.yml"
    _edit(root, name, "../pipelines/orders/**", "../pipelines/order_typo/**")
    problems = check_references(load_bundle(root, user=USER))
    assert (
        f"{name}: resources.pipelines.orders.libraries[0]: '../pipelines/order_typo/**' matches no Python "
        "file: write the pipeline sources" in problems
    )


def test_library_kind_that_cannot_run_locally_is_named(root: Path) -> None:
    _edit(
        root, "resources/orders.pipeline.yml", "        - file:\n", "        - jar: x.jar\n        - file:\n"
    )
    with pytest.raises(BundleError, match=r"libraries\]?\[1\]: only glob, file and notebook libraries"):
        load_bundle(root, user=USER)


def test_missing_include_is_an_error_naming_the_include(root: Path) -> None:
    _edit(root, "databricks.yml", "  - resources/*.yml\n", "  - resources/*.yml\n  - extra/*.yml\n")
    with pytest.raises(BundleError, match=r"databricks.yml: include\[1\]: 'extra/\*.yml' matches no file"):
        load_bundle(root, user=USER)


def test_resource_declared_in_two_files_is_an_error(root: Path) -> None:
    (root / "resources/copy.pipeline.yml").write_text((root / "resources/orders.pipeline.yml").read_text())
    with pytest.raises(BundleError, match="resources.pipelines.orders: already declared"):
        load_bundle(root, user=USER)


def test_invalid_yaml_and_missing_bundle_name_their_file(root: Path, tmp_path_factory) -> None:
    with pytest.raises(BundleError, match="databricks.yml is missing"):
        load_bundle(tmp_path_factory.mktemp("empty"))
    (root / "resources/orders.pipeline.yml").write_text("resources: [unclosed\n")
    with pytest.raises(BundleError, match="resources/orders.pipeline.yml: not valid YAML"):
        load_bundle(root)


def test_a_project_adds_properties_to_the_pipeline_spec_and_its_checks(root: Path) -> None:
    @dataclass(frozen=True)
    class ShopSpec(PipelineSpec):
        @property
        def scope(self) -> str:
            return self.configuration["shop.scope"]

    bundle = load_bundle(root, "dev", user=USER, spec_type=ShopSpec)
    assert isinstance(bundle.pipeline("orders"), ShopSpec) and bundle.pipeline("orders").scope == "shop-dev"
    problems = check_references(
        bundle, extra=lambda b: [f"{b.target}: {type(b.pipeline('orders')).__name__}"]
    )
    assert problems == ["dev: ShopSpec (target dev)", "prod: ShopSpec (target prod)"]


def test_environment_puts_a_local_project_on_the_path_and_names_a_missing_requirement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "other_project"
    (project / "src" / "other_package").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'other-project'\n")
    (project / "src" / "other_package" / "__init__.py").write_text("VALUE = 42\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", "/already/there")
    monkeypatch.delitem(sys.modules, "other_package", raising=False)
    added = install_environment([f"--editable {project}", "pyyaml>=6"], "orders")
    assert added == [(project / "src").resolve()]
    assert __import__("other_package").VALUE == 42
    assert os.environ["PYTHONPATH"].split(os.pathsep) == [str((project / "src").resolve()), "/already/there"]
    with pytest.raises(
        DependencyError, match=r"Pipeline orders: environment dependency 'no-such-dist-xyz==1.0'"
    ):
        install_environment(["no-such-dist-xyz==1.0"], "orders")
    sys.modules.pop("other_package", None)
