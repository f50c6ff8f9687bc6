"""The audit derivation as the bundle's job task runs it on Databricks: from published event log tables and
bronze tables addressed by `catalog.schema.table` (here Spark's own catalog, tables registered over the
tiny pipeline's Delta folders), into `catalog.schema.bz_audit_*` tables. It must give the same rows as the
local derivation, and a rerun must add nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inventory_bronze.audit.store import AUDIT_EXPECTATIONS, AUDIT_LOG, Location, audit_catalog
from inventory_bronze.errors import ConfigError
from tests.audit.conftest import KEY, TARGETS

CATALOG = "spark_catalog"
SCHEMA = "audit_catalog_test"
EVENT_LOG = "event_log_audit_test"
# columns that differ between two derivations of the same events by construction
VOLATILE = {"audited_at"}


def _rows(df: Any) -> list[tuple[Any, ...]]:
    columns = [c for c in df.columns if c not in VOLATILE]
    return sorted(tuple(r) for r in df.select(*columns).collect())


@pytest.fixture(scope="module")
def published(
    spark: Any, tiny: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Location]:
    """The tiny pipeline's event log and bronze table published in a schema, as Databricks publishes them."""
    pipeline = tiny["storage"] / KEY
    location = tmp_path_factory.mktemp("catalog") / f"{SCHEMA}.db"
    spark.sql(f"DROP SCHEMA IF EXISTS {CATALOG}.{SCHEMA} CASCADE")
    spark.sql(f"CREATE SCHEMA {CATALOG}.{SCHEMA} LOCATION '{location}'")
    tables = {EVENT_LOG: pipeline / "system" / "events", "bz_items": pipeline / "tables" / "bz_items"}
    for name, path in tables.items():
        spark.sql(f"CREATE TABLE {CATALOG}.{SCHEMA}.{name} USING DELTA LOCATION '{path}'")
    yield Location(catalog=CATALOG, schema=SCHEMA)
    spark.sql(f"DROP SCHEMA IF EXISTS {CATALOG}.{SCHEMA} CASCADE")


def test_catalog_derivation_equals_the_local_one(
    spark: Any, tiny: dict[str, Any], published: Location
) -> None:
    result = audit_catalog(spark, CATALOG, SCHEMA, [EVENT_LOG], targets=TARGETS)
    assert sorted(result.updates) == sorted(u.update_id for u in tiny["updates"])
    assert spark.catalog.tableExists(f"{CATALOG}.{SCHEMA}.{AUDIT_LOG}")
    local = Location.local(tiny["storage"])
    for table in (AUDIT_LOG, AUDIT_EXPECTATIONS):
        on_catalog = spark.read.table(published.ref(table))
        assert on_catalog.count() > 0
        assert _rows(on_catalog) == _rows(local.read(spark, table)), table

    again = audit_catalog(spark, CATALOG, SCHEMA, [EVENT_LOG], targets=TARGETS)
    assert again.updates == [] and again.audit_rows == 0
    assert spark.read.table(published.ref(AUDIT_LOG)).count() == len(tiny["updates"])


@pytest.mark.parametrize(
    ("catalog", "schema", "event_log", "named"),
    [
        ("spark_catalog", "x; DROP TABLE y", EVENT_LOG, "--schema"),
        ("cat`alog", SCHEMA, EVENT_LOG, "--catalog"),
        (CATALOG, SCHEMA, "event_log` UNION SELECT", "--event-log"),
    ],
)
def test_identifiers_that_are_not_plain_are_refused(
    spark: Any, catalog: str, schema: str, event_log: str, named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        audit_catalog(spark, catalog, schema, [event_log], targets=TARGETS)


def test_the_job_tasks_parameters_reach_the_catalog_derivation(spark: Any, published: Location) -> None:
    """`inventory-bronze audit` with the job task's flags (catalog, schema, event logs) reads the published
    tables; an event log that is not published fails naming it and where it was looked for."""
    from inventory_bronze.cli import build_parser

    config = Path(__file__).resolve().parents[2] / "conf" / "tables.yml"
    args = build_parser().parse_args(
        ["audit", "--config", str(config), "--catalog", CATALOG, "--schema", SCHEMA]
        + ["--event-log", "event_log_missing"]
    )
    with pytest.raises(ConfigError, match=f"event_log_missing.*{CATALOG}.{SCHEMA}.*event_log"):
        args.handler(args)
