"""conf/tables.yml: typed, validated before Spark starts, checked against the source schema; errors name
the file, the table and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from inventory_bronze import config
from inventory_bronze.errors import ConfigError
from inventory_devkit import project


def _write(tmp_path: Path, mutate) -> Path:  # noqa: ANN001
    data = yaml.safe_load(project.CONFIG_PATH.read_text())
    mutate(data)
    path = tmp_path / "tables.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_repository_configuration_is_valid_and_covers_the_source():
    from inventory_bronze.source.schema import TABLES

    conf = config.load(project.CONFIG_PATH)
    assert set(conf.tables) == {t.name for t in TABLES}  # every declared source table, nothing else
    assert set(conf.tables) >= set(  # the seed's ten
        [
            "products",
            "suppliers",
            "warehouses",
            "inventory",
            "orders",
            "order_details",
            "shipments",
            "returns",
            "stock_levels",
            "customers",
        ]
    )
    assert conf.table("orders").pattern is config.Pattern.cdc
    assert conf.table("customers").pattern is config.Pattern.full_refresh


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["tables"]["orders"].update(colour="blue"), "tables.orders.colour: Extra inputs"),
        (lambda d: d["tables"]["orders"].update(pattern="hourly"), "tables.orders.pattern"),
        (lambda d: d["tables"]["orders"].update(keys="Order_ID"), "tables.orders.keys"),
        (lambda d: d["tables"]["orders"].update(keys=["Order_ID; DROP TABLE x"]), "tables.orders.keys.0"),
        (
            lambda d: d["tables"]["orders"]["rules"].append(
                {"name": "evil", "constraint": "1=1; DROP TABLE tests.orders", "action": "drop"}
            ),
            "single SQL boolean expression",
        ),
        (
            lambda d: d["tables"]["orders"]["rules"].append(
                {"name": "x", "constraint": "true", "action": "explode"}
            ),
            "tables.orders.rules.4.action",
        ),
        (lambda d: d["tables"]["orders"].update(keys=["Customer_ID"]), "is not the source primary key"),
        (
            lambda d: d["tables"]["orders"].update(cluster_by=["Nope"]),
            "tables.orders.cluster_by: no column 'Nope'",
        ),
        (
            lambda d: d["tables"]["customers"]["pii"].pop("Email"),
            "source PII column 'Email' has no treatment",
        ),
        (lambda d: d["tables"].pop("returns"), "source table 'returns' has no bronze configuration"),
    ],
    ids=[
        "unknown-key",
        "bad-pattern",
        "wrong-type",
        "sql-in-identifier",
        "sql-in-constraint",
        "bad-action",
        "keys-not-pk",
        "unknown-column",
        "pii-untreated",
        "table-missing",
    ],
)
def test_invalid_configuration_is_refused_naming_file_table_and_key(tmp_path, mutate, message):
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("tables: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(bad)


def _with_rule(constraint: str):  # noqa: ANN202
    rule = {"name": "probe", "constraint": constraint, "action": "warn"}
    return lambda d: d["tables"]["customers"]["rules"].append(rule)


@pytest.mark.parametrize(
    ("constraint", "message"),
    [
        ("java_method('java.lang.System', 'getenv', 'PGPASSWORD') IS NOT NULL", "function 'java_method'"),
        ("reflect('java.lang.System', 'getenv', 'X') = ''", "function 'reflect'"),
        ("CASE WHEN Phone IS NULL THEN raise_error(Phone) ELSE true END", "function 'raise_error'"),
        ("my_catalog.my_schema.is_valid(Email)", "'my_catalog.my_schema.is_valid' is not a built-in"),
        ("Customer_ID IN (SELECT Customer_ID FROM tests.orders)", "'SELECT': a rule judges its own row"),
        ("EXISTS (SELECT 1)", "'EXISTS'"),
        ("trim(Customer_Name <> ''", "1 '(' not closed"),
        ("Email RLIKE '^[a-z]", "unterminated quoted string"),
    ],
    ids=["java_method", "reflect", "raise_error", "udf", "subquery", "exists", "paren", "quote"],
)
def test_rules_call_only_allowed_functions_named_at_load(tmp_path, constraint, message):
    path = _write(tmp_path, _with_rule(constraint))
    with pytest.raises(ConfigError) as err:
        config.load(path)
    index = len(config.load(project.CONFIG_PATH).table("customers").rules)  # the appended rule
    assert f"tables.customers.rules.{index}" in str(err.value) and "rule 'probe'" in str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "constraint",
    [
        "Email IS NULL OR regexp_like(lower(trim(Email)), '^[^@]+@[^@]+$')",
        "coalesce(length(`Phone`), 0) BETWEEN 0 AND 40 AND Customer_ID IN (1, 2, 3)",
        "to_date(Created_At) <= current_date() + INTERVAL 1 DAY",
        "Customer_Name NOT LIKE '%select(%' AND \"from (x)\" <> Customer_Name",  # words inside literals
    ],
)
def test_ordinary_rules_are_accepted(tmp_path, constraint):
    rules = config.load(_write(tmp_path, _with_rule(constraint))).table("customers").rules
    assert rules[-1].constraint == constraint


def test_a_syntax_error_spark_finds_names_the_rule(spark):
    from inventory_bronze import bronze

    rule = config.Rule(name="broken_rule", constraint="Customer_ID >>> = 1", action="warn")
    with pytest.raises(ConfigError, match="Rule 'broken_rule' .* is not valid Spark SQL"):
        bronze.rule_failures([rule])


def test_a_pipeline_run_without_its_configuration_setting_fails_in_one_line_naming_it(
    spark, tmp_path, capsys
) -> None:
    """The pipeline files find conf/tables.yml through the setting inventory.config_path (the bundle sets
    it); run without it, the error names the setting and how to give it, before anything is written."""
    from inventory_bronze.cli import main

    spark.conf.unset("inventory.config_path")  # an earlier update in this session may have set it
    source = project.ROOT / "pipelines" / "inventory_bronze_batch" / "bz_products.py"
    assert main(["dlt", "run", str(source), "--storage", str(tmp_path / "run"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "'inventory.config_path' is not set" in err and "--conf inventory.config_path=" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "tables").exists()
