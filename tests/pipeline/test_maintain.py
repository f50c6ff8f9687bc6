"""`maintain`: OPTIMIZE and VACUUM (retain 168 h by default) every bronze table of the local storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from inventory_bronze.errors import ConfigError
from inventory_bronze.maintenance import local_tables, maintain


def test_maintain_compacts_and_vacuums_every_bronze_table(spark, tmp_path: Path):
    table = tmp_path / "storage" / "some_pipeline" / "tables" / "bz_things"
    other = tmp_path / "storage" / "some_pipeline" / "tables" / "not_bronze"
    for i in range(3):  # three small appends: three files to compact
        spark.range(i * 10, i * 10 + 10).write.format("delta").mode("append").save(str(table))
    spark.range(3).write.format("delta").save(str(other))
    tables = local_tables(tmp_path / "storage")
    assert tables == [str(table)]
    done = maintain(spark, tables, retain_hours=168, echo=lambda line: None)
    assert done[0].optimized_files_removed >= 3
    operations = [r.operation for r in spark.sql(f"DESCRIBE HISTORY delta.`{table}`").collect()]
    assert "OPTIMIZE" in operations and "VACUUM END" in operations
    assert spark.read.format("delta").load(str(table)).count() == 30
    with pytest.raises(ConfigError, match="vacuum-retain-hours"):
        maintain(spark, tables, retain_hours=-1)
