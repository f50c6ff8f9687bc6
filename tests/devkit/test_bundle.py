"""The Databricks bundle: every file validates against the official bundle JSON schema; the loader the
local runner uses resolves the same files (targets, variables, libraries, configuration); the reference
checks the schema cannot do pass on the real bundle and fail on broken copies of it. No Spark.

The generic reading of a bundle (includes, targets, variables, problems named with their file and key) is
localdlt's, tested in runtime/tests/test_bundle.py; here: this project's bundle and its own rules."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import regex
import yaml
from jsonschema import validators
from jsonschema.exceptions import ValidationError

from inventory_bronze import config
from inventory_devkit import project
from inventory_devkit.bundle import (
    HOURLY_JOB,
    BundleError,
    bronze_tables,
    bundle_files,
    check_references,
    is_hourly,
    load_bundle,
    merged_config,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_SHA256 = "c3e8df8f2e1372d7dfbdb614242c8fbd4c20fe7c81f5ae2d935833b6953546ca"
SCHEMA_NAME = "databricks-bundle.schema.json"
BATCH, CDC = "inventory_bronze_batch", "inventory_bronze_cdc"
USER = "jane.doe@example.com"

# the pipelines' table split (docs/deploy.md): the tables of pattern cdc in the continuous pipeline
CDC_TABLES = tuple(
    f"bz_{t}" for t, c in project.bronze_config().tables.items() if c.pattern is config.Pattern.cdc
)
BATCH_TABLES = tuple(t for t in bronze_tables(str(project.CONFIG_PATH)) if t not in CDC_TABLES)

CONFIG_KEYS = {
    "inventory.config_path",
    "inventory.secret_scope",
    "inventory.secret.connection_string",
    "inventory.secret.user",
    "inventory.secret.password",
    "inventory.secret.pii_key",
    "inventory.source.schema",
    "inventory.source.database",
    "inventory.published_schema",
}


# --- the official schema ------------------------------------------------------------------------------


def _schema_path() -> Path:
    candidates = [
        Path(os.environ["INVENTORY_BRONZE_BUNDLE_SCHEMA"])
        if "INVENTORY_BRONZE_BUNDLE_SCHEMA" in os.environ
        else None,
        ROOT.parent / "shared" / "reference" / SCHEMA_NAME,
        Path("/work/shared/reference") / SCHEMA_NAME,
    ]
    for path in filter(None, candidates):
        if path.is_file():
            return path
    pytest.fail(
        f"the official bundle schema ({SCHEMA_NAME}, `databricks bundle schema`) is not at "
        f"{', '.join(str(c) for c in candidates if c)}: set INVENTORY_BRONZE_BUNDLE_SCHEMA to its path"
    )


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    # the schema's patterns use \p{L} / \p{N}, which Python's `re` rejects: match them with `regex`
    if validator.is_type(instance, "string") and not regex.search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@pytest.fixture(scope="module")
def schema_errors() -> Callable[[Any], list[str]]:
    """A function giving readable schema errors for a bundle document (empty when it is valid)."""
    path = _schema_path()
    schema = json.loads(path.read_text(encoding="utf-8"))
    base = validators.validator_for(schema, default=validators.Draft202012Validator)
    validator = validators.extend(base, {"pattern": _pattern})(schema)

    def errors(document: Any) -> list[str]:
        found = []
        for error in validator.iter_errors(document):
            deepest = _deepest(error)
            found.append(f"{deepest.json_path}: {deepest.message[:300]}")
        return found

    return errors


def _deepest(error: ValidationError) -> ValidationError:
    """The most specific error under a oneOf/anyOf (each field may also be a ${...} string)."""
    best = error
    for sub in error.context or ():
        candidate = _deepest(sub)
        if len(candidate.absolute_path) > len(best.absolute_path):
            best = candidate
    return best


def test_the_schema_is_the_official_one() -> None:
    digest = hashlib.sha256(_schema_path().read_bytes()).hexdigest()
    assert digest == SCHEMA_SHA256, (
        "the bundle schema differs from the one /work/shared/reference/README.md names"
    )


def test_merged_bundle_matches_the_schema(schema_errors: Callable[[Any], list[str]]) -> None:
    assert schema_errors(merged_config(ROOT)) == []


@pytest.mark.parametrize("path", bundle_files(ROOT), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_bundle_file_matches_the_schema(path: Path, schema_errors: Callable[[Any], list[str]]) -> None:
    assert schema_errors(yaml.safe_load(path.read_text(encoding="utf-8"))) == []


def test_schema_validation_can_fail(schema_errors: Callable[[Any], list[str]]) -> None:
    pipeline = {"name": "p", "continuous": "${var.flag}", "serverless": True}
    assert schema_errors({"resources": {"pipelines": {"p": pipeline}}}) == []  # \p{L} patterns work
    assert schema_errors({"resources": {"pipelines": {"p": {**pipeline, "continous": True}}}})
    assert schema_errors({"resources": {"pipelines": {"p": {**pipeline, "continuous": "yes"}}}})
    task = {"task_key": "t", "pipeline_task": {"pipeline_id": "x"}, "max_retries": "three"}
    assert schema_errors({"resources": {"jobs": {"j": {"tasks": [task]}}}})


# --- the loader: the local runner's view of the same files ----------------------------------------------


def test_dev_target_is_the_default_per_user_development_target() -> None:
    bundle = load_bundle(ROOT, user=USER)
    assert (bundle.target, bundle.mode, bundle.name) == ("dev", "development", "inventory_bronze")
    assert set(bundle.pipelines) == {BATCH, CDC}
    for spec in bundle.pipelines.values():
        assert (spec.catalog, spec.schema) == ("workspace", "inventory_bronze_jane_doe")
        assert spec.development is True
        assert spec.event_log_name == f"event_log_{spec.key}"
        assert spec.event_log_table == f"workspace.inventory_bronze_jane_doe.event_log_{spec.key}"
    assert bundle.pipelines[BATCH].continuous is False
    assert bundle.pipelines[CDC].continuous is True


def test_prod_target_publishes_to_workspace_inventory_bronze() -> None:
    bundle = load_bundle(ROOT, "prod", user=USER)
    assert bundle.mode == "production"
    for spec in bundle.pipelines.values():
        assert (spec.catalog, spec.schema, spec.development) == ("workspace", "inventory_bronze", False)
        assert spec.event_log_table == f"workspace.inventory_bronze.event_log_{spec.key}"


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_pipeline_configuration_is_what_the_pipeline_code_reads(target: str) -> None:
    bundle = load_bundle(ROOT, target, user=USER)
    for spec in bundle.pipelines.values():
        assert set(spec.configuration) == CONFIG_KEYS
        assert all(isinstance(v, str) for v in spec.configuration.values())
        assert spec.configuration["inventory.config_path"] == str(ROOT / "conf" / "tables.yml")
        assert spec.configuration["inventory.source.database"] == "DE"
        assert spec.configuration["inventory.source.schema"] == "tests"
        assert spec.configuration["inventory.secret_scope"] == "inventory-kv"
        assert spec.configuration["inventory.published_schema"] == f"{spec.catalog}.{spec.schema}"
    # both pipelines read the same source and secrets
    assert bundle.pipelines[BATCH].configuration == bundle.pipelines[CDC].configuration


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_pipelines_install_the_project_into_their_environment(target: str) -> None:
    """As Databricks' bundle template does: the package reaches the pipeline code through the pipeline's
    environment (pip, editable: the deployed files), not through a sys.path line in each file."""
    bundle = load_bundle(ROOT, target, user=USER)
    for spec in bundle.pipelines.values():
        assert spec.dependencies == (f"--editable {ROOT}",)
    for source in (ROOT / "pipelines").rglob("*.py"):
        assert "sys.path" not in source.read_text(), source


def test_yaml_holds_secret_names_not_secret_values() -> None:
    bundle = load_bundle(ROOT, user=USER)
    names = {
        k: v for k, v in bundle.pipelines[BATCH].configuration.items() if k.startswith("inventory.secret.")
    }
    assert names == {
        "inventory.secret.connection_string": "KConnectionString",
        "inventory.secret.user": "KUser",
        "inventory.secret.password": "KPassword",
        "inventory.secret.pii_key": "KPiiEncryptionKey",
    }
    for path in bundle_files(ROOT):
        text = path.read_text(encoding="utf-8").lower()
        assert "postgresql://" not in text and "password=" not in text and "vault.azure.net" not in text


def test_variables_can_be_overridden_and_unknown_overrides_are_refused() -> None:
    bundle = load_bundle(ROOT, variables={"secret_scope": "other-scope"}, user=USER)
    assert bundle.pipelines[CDC].configuration["inventory.secret_scope"] == "other-scope"
    with pytest.raises(BundleError, match="no_such_variable"):
        load_bundle(ROOT, variables={"no_such_variable": 1})


def test_bronze_tables_are_the_source_schema_tables() -> None:
    from inventory_bronze.source.schema import TABLES

    assert set(bronze_tables(str(project.CONFIG_PATH))) == {f"bz_{t.name}" for t in TABLES}
    assert set(CDC_TABLES) == {f"bz_{t.name}" for t in TABLES if t.ingestion == "streaming"}


# --- the jobs --------------------------------------------------------------------------------------------


def test_hourly_job_updates_then_reconciles_audits_and_maintains() -> None:
    bundle = load_bundle(ROOT, "prod", user=USER)
    job = bundle.resources["jobs"][HOURLY_JOB]
    assert job["schedule"] == {"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "Asia/Kolkata"}
    tasks = {t["task_key"]: t for t in job["tasks"]}
    assert list(tasks) == ["batch_update", "reconcile", "audit", "maintain"]
    assert (
        tasks["batch_update"]["pipeline_task"]["pipeline_id"]
        == "${resources.pipelines.inventory_bronze_batch.id}"
    )
    assert [d["task_key"] for d in tasks["reconcile"]["depends_on"]] == ["batch_update"]
    assert "run_if" not in tasks["reconcile"]  # a failed update's tables are not compared
    assert [d["task_key"] for d in tasks["audit"]["depends_on"]] == ["batch_update", "reconcile"]
    assert tasks["audit"]["run_if"] == "ALL_DONE"  # the audit tells failed updates and mismatches too
    assert [d["task_key"] for d in tasks["maintain"]["depends_on"]] == ["batch_update", "audit"]
    for key in ("reconcile", "audit", "maintain"):
        wheel = tasks[key]["python_wheel_task"]
        assert (wheel["package_name"], wheel["entry_point"]) == ("inventory_bronze", "inventory-bronze")
        params = wheel["parameters"]
        assert params[0] == key
        assert params[params.index("--catalog") + 1] == "workspace"
        assert params[params.index("--schema") + 1] == "inventory_bronze"
    for task in tasks.values():
        assert task["max_retries"] == 3 and task["min_retry_interval_millis"] >= 60_000
        assert task["retry_on_timeout"] is True


def test_audit_and_reconciliation_read_the_event_logs_the_pipelines_publish() -> None:
    bundle = load_bundle(ROOT, user=USER)
    event_logs = {spec.event_log_name for spec in bundle.pipelines.values()}
    for job in bundle.resources["jobs"].values():
        for task in job["tasks"]:
            params = task.get("python_wheel_task", {}).get("parameters", [])
            if params[:1] in (["audit"], ["reconcile"]):
                named = {params[i + 1] for i, p in enumerate(params) if p == "--event-log"}
                assert named and named <= event_logs
                if params[0] == "reconcile":  # every pipeline's tables are compared
                    assert named == event_logs


def test_reconciliation_reads_the_source_the_pipelines_read() -> None:
    """The same secret scope, secret names and source schema as the pipelines' configuration."""
    bundle = load_bundle(ROOT, "prod", user=USER)
    [task] = [t for t in bundle.resources["jobs"][HOURLY_JOB]["tasks"] if t["task_key"] == "reconcile"]
    params = task["python_wheel_task"]["parameters"]
    for spec in bundle.pipelines.values():
        conf = spec.configuration
        assert params[params.index("--secret-scope") + 1] == conf["inventory.secret_scope"]
        names = params[params.index("--secret-names") + 1 : params.index("--secret-names") + 4]
        assert names == [conf[f"inventory.secret.{n}"] for n in ("connection_string", "user", "password")]
        assert params[params.index("--source-schema") + 1] == conf["inventory.source.schema"]


def test_audit_tasks_read_the_configuration_the_pipelines_deploy() -> None:
    """A wheel has no repository around it: the audit tasks name the deployed conf/tables.yml (the file
    the pipelines read from the synced bundle files), resolved here against the bundle root."""
    bundle = load_bundle(ROOT, "prod", user=USER)
    audits = 0
    for job in bundle.resources["jobs"].values():
        for task in job["tasks"]:
            params = task.get("python_wheel_task", {}).get("parameters", [])
            if params[:1] == ["audit"]:
                config = Path(params[params.index("--config") + 1])
                assert config.resolve() == (ROOT / "conf" / "tables.yml").resolve(), task["task_key"]
                audits += 1
    assert audits == 2


def test_wheel_task_parameters_are_commands_the_cli_accepts() -> None:
    from inventory_bronze.cli import build_parser

    bundle = load_bundle(ROOT, "prod", user=USER)
    parsed = 0
    for job in bundle.resources["jobs"].values():
        for task in job["tasks"]:
            params = task.get("python_wheel_task", {}).get("parameters")
            if params is None:
                continue
            try:
                args = build_parser().parse_args(params)
            except SystemExit:
                pytest.fail(f"task {task['task_key']}: `inventory-bronze {' '.join(params)}` is refused")
            assert args.command == params[0] and callable(args.handler)
            parsed += 1
    assert parsed >= 2


def test_daily_job_fully_refreshes_customers_only() -> None:
    job = load_bundle(ROOT, user=USER).resources["jobs"]["inventory_bronze_daily"]
    assert job["schedule"]["timezone_id"] == "Asia/Kolkata"
    refresh = job["tasks"][0]["pipeline_task"]
    assert refresh["full_refresh_selection"] == ["bz_customers"]
    assert "full_refresh" not in refresh and "refresh_selection" not in refresh


def test_wheel_tasks_install_the_wheel_the_artifact_builds() -> None:
    bundle = load_bundle(ROOT, user=USER)
    (artifact,) = bundle.artifacts.values()
    assert artifact["type"] == "whl" and "setup.py" not in artifact["build"]
    assert "--wheel-dir dist" in artifact["build"]
    for job in bundle.resources["jobs"].values():
        environments = {e["environment_key"]: e["spec"] for e in job["environments"]}
        for task in job["tasks"]:
            if "python_wheel_task" in task:
                assert environments[task["environment_key"]]["dependencies"] == ["../dist/*.whl"]


@pytest.mark.parametrize(
    ("cron", "hourly"),
    [
        ("0 0 * * * ?", True),
        ("0 0 */1 * * ?", True),
        ("0 15 0/1 ? * *", True),
        ("0 0 0 * * ?", False),
        ("0 */30 * * * ?", False),
        ("0 0 */2 * * ?", False),
        ("0 0 * * *", False),
    ],
)
def test_is_hourly(cron: str, hourly: bool) -> None:
    assert is_hourly(cron) is hourly


# --- reference checks on the real bundle -----------------------------------------------------------------


def test_real_bundle_references_resolve() -> None:
    """Everything but the pipeline sources, which pipelines/ provides (next test)."""
    problems = check_references(load_bundle(ROOT, user=USER))
    pending = ("matches no Python file", "is in no pipeline")
    assert [p for p in problems if not any(s in p for s in pending)] == []


def test_real_bundle_pipeline_sources_cover_every_table_once() -> None:
    """One file per bronze table, under the folder named after its pipeline."""
    bundle = load_bundle(ROOT, user=USER)
    assert check_references(bundle) == []
    assert bundle.pipelines[BATCH].tables() == sorted(BATCH_TABLES)
    assert bundle.pipelines[CDC].tables() == sorted(CDC_TABLES)
    for key, spec in bundle.pipelines.items():  # nothing but the tables' files, in the pipeline's folder
        assert [p.stem for p in spec.libraries] == spec.tables()
        assert {p.parent for p in spec.libraries} == {(ROOT / "pipelines" / key).resolve()}


# --- the checks can fail: broken copies of the bundle ------------------------------------------------------


@pytest.fixture
def copy_root(tmp_path: Path) -> Path:
    """A copy of the bundle with stand-in pipeline sources (tables and a helper per pipeline)."""
    shutil.copy(ROOT / "databricks.yml", tmp_path)
    shutil.copytree(ROOT / "resources", tmp_path / "resources")
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    for folder, tables in ((BATCH, BATCH_TABLES), (CDC, CDC_TABLES)):
        (tmp_path / "pipelines" / folder).mkdir(parents=True)
        (tmp_path / "pipelines" / folder / "_helpers.py").write_text("# helper datasets\n")
        (tmp_path / "pipelines" / folder / "README.md").write_text("not a library\n")
        for table in tables:
            (tmp_path / "pipelines" / folder / f"{table}.py").write_text(f"# {table}\n")
    return tmp_path


def _edit(root: Path, name: str, old: str, new: str) -> None:
    path = root / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_complete_copy_has_no_problems_and_lists_its_sources(copy_root: Path) -> None:
    bundle = load_bundle(copy_root, user=USER)
    assert check_references(bundle) == []
    batch = bundle.pipelines[BATCH]
    folder = (copy_root / "pipelines" / BATCH).resolve()
    assert batch.libraries == sorted([folder / "_helpers.py", *(folder / f"{t}.py" for t in BATCH_TABLES)])
    assert batch.tables() == sorted(BATCH_TABLES)
    assert bundle.pipelines[CDC].tables() == sorted(CDC_TABLES)
    assert batch.config_path == str(copy_root.resolve() / "conf" / "tables.yml")


def test_pipeline_without_the_bronze_configuration_is_reported(copy_root: Path) -> None:
    name = "resources/inventory_bronze_cdc.pipeline.yml"
    _edit(
        copy_root, name, "inventory.config_path: ${workspace.file_path}/conf/tables.yml", "inventory.other: x"
    )
    problems = check_references(load_bundle(copy_root, user=USER))
    assert any(
        f"resources.pipelines.{CDC}.configuration.inventory.config_path: name the bronze" in p
        for p in problems
    )
    assert any("table bz_orders is in no pipeline" in p for p in problems)


def test_broken_resource_reference_is_reported(copy_root: Path) -> None:
    name = "resources/inventory_bronze_hourly.job.yml"
    _edit(copy_root, name, "pipelines.inventory_bronze_batch.id", "pipelines.inventory_bronze_bach.id")
    problems = check_references(load_bundle(copy_root, user=USER))
    assert any(
        p.startswith(f"{name}: resources.jobs.{HOURLY_JOB}.tasks[0].pipeline_task.pipeline_id")
        and "${resources.pipelines.inventory_bronze_bach.id} points at nothing" in p
        for p in problems
    )
    assert any(f"no task updates pipeline {BATCH}" in p for p in problems)


def test_library_glob_matching_nothing_is_reported(copy_root: Path) -> None:
    name = "resources/inventory_bronze_cdc.pipeline.yml"
    _edit(copy_root, name, f"../pipelines/{CDC}/**", "../pipelines/cdc_typo/**")
    problems = check_references(load_bundle(copy_root, user=USER))
    assert (
        f"{name}: resources.pipelines.{CDC}.libraries[0]: '../pipelines/cdc_typo/**' matches no Python file: write the pipeline sources"
        in problems
    )
    assert any("table bz_orders is in no pipeline" in p for p in problems)


def test_pipeline_without_a_published_event_log_is_reported(copy_root: Path) -> None:
    _edit(
        copy_root,
        "resources/inventory_bronze_cdc.pipeline.yml",
        "        name: event_log_inventory_bronze_cdc\n",
        "",
    )
    problems = check_references(load_bundle(copy_root, user=USER))
    assert any(f"resources.pipelines.{CDC}.event_log.name: publish the event log" in p for p in problems)


def test_table_covered_twice_is_reported(copy_root: Path) -> None:
    (copy_root / "pipelines" / BATCH / "bz_orders.py").write_text("# bz_orders again\n")
    problems = check_references(load_bundle(copy_root, user=USER))
    assert any(f"table bz_orders is in 2 pipelines ({BATCH}, {CDC})" in p for p in problems)


def test_schedule_that_is_not_hourly_in_kolkata_is_reported(copy_root: Path) -> None:
    name = "resources/inventory_bronze_hourly.job.yml"
    _edit(copy_root, name, '"0 0 * * * ?"', '"0 0 */2 * * ?"')
    _edit(copy_root, name, "timezone_id: Asia/Kolkata", "timezone_id: UTC")
    problems = check_references(load_bundle(copy_root, user=USER))
    assert any("quartz_cron_expression: must fire every hour" in p for p in problems)
    assert any(
        f"resources.jobs.{HOURLY_JOB}.schedule.timezone_id: must be Asia/Kolkata" in p for p in problems
    )


def test_job_task_on_the_continuous_pipeline_is_reported(copy_root: Path) -> None:
    _edit(
        copy_root,
        "resources/inventory_bronze_daily.job.yml",
        "pipelines.inventory_bronze_batch.id",
        "pipelines.inventory_bronze_cdc.id",
    )
    problems = check_references(load_bundle(copy_root, user=USER))
    assert any(f"pipeline {CDC} is continuous" in p for p in problems)


def test_selection_of_a_table_the_pipeline_lacks_is_reported(copy_root: Path) -> None:
    _edit(copy_root, "resources/inventory_bronze_daily.job.yml", "- bz_customers", "- bz_orders")
    problems = check_references(load_bundle(copy_root, user=USER))
    assert any(
        "full_refresh_selection: bz_orders is not a table of pipeline inventory_bronze_batch" in p
        for p in problems
    )
