"""A tiny pipeline (one bronze table, its quarantine, three kinds of expectations) run through the local
runtime three times (10 rows, 14 rows, then a failing update), audited once: shared by the audit tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inventory_bronze.audit.store import audit_local
from localdlt import UpdateOptions, run_update

TARGETS = {"bz_items": "test.items"}
KEY = "items"

PIPELINE = """
import dlt
from pyspark.sql import functions as F

ROWS = int(spark.conf.get("audit_test.rows", "10"))
LIMIT = int(spark.conf.get("audit_test.fail_at", "1000000"))


@dlt.view
def bz_items_source():
    return spark.range(ROWS).select(
        "id",
        F.current_timestamp().alias("load_timestamp"),
        F.lit(spark.conf.get("pipelines.updateId")).alias("batch_id"),
    )


@dlt.view
@dlt.expect("id_small", "id < 8")
@dlt.expect_or_drop("id_even_or_one", "id % 2 = 0 OR id = 1")
@dlt.expect_or_fail("id_below_limit", f"id < {LIMIT}")
def bz_items_feed():
    return dlt.read("bz_items_source")


@dlt.table
def bz_items():
    return dlt.read("bz_items_feed")


@dlt.table
def bz_items_quarantine():
    return dlt.read("bz_items_source").where("NOT (id % 2 = 0 OR id = 1)")
"""


def _update(spark: Any, source: Path, storage: Path, **conf: str) -> Any:
    return run_update(
        [source],
        storage / KEY,
        conf={f"audit_test.{k}": v for k, v in conf.items()},
        options=UpdateOptions(),
        pipeline_name="audit_test",
        spark=spark,
    )


@pytest.fixture(scope="session")
def tiny(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three updates of the tiny pipeline: 10 rows, 14 rows, then one failing on its fail expectation."""
    base = tmp_path_factory.mktemp("audit_tiny")
    source = base / "pipeline.py"
    source.write_text(PIPELINE)
    storage = base / "storage"
    first = _update(spark, source, storage, rows="10")
    second = _update(spark, source, storage, rows="14")
    failed = _update(spark, source, storage, rows="14", fail_at="12")
    assert first.ok and second.ok and not failed.ok
    result = audit_local(spark, storage, targets=TARGETS)
    return {"storage": storage, "updates": [first, second, failed], "result": result}
