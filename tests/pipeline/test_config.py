"""conf/tables.yml: typed, validated before Spark starts, checked against the source schema; errors name
the file, the table and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from inventory_bronze import config
from inventory_bronze.errors import ConfigError


def _write(tmp_path: Path, mutate) -> Path:  # noqa: ANN001
    data = yaml.safe_load(config.DEFAULT_PATH.read_text())
    mutate(data)
    path = tmp_path / "tables.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_repository_configuration_is_valid_and_covers_the_source():
    conf = config.load()
    assert sorted(conf.tables) == sorted(
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
