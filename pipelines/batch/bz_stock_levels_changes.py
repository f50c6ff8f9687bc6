"""Every insert, update, delete and truncate of tests.stock_levels, captured from PostgreSQL's WAL: the append-only
bronze archive of changes (PII protected), partitioned by the day of the change."""

import sys

sys.path.append(spark.conf.get("bundle.sourcePath", "."))

import dlt  # noqa: E402

from inventory_bronze import bronze  # noqa: E402


@dlt.table(
    comment="Every change of tests.stock_levels (log-based capture), PII protected.",
    partition_cols=["_change_date"],
    table_properties={
        "quality": "bronze",
        "delta.appendOnly": "true",
        **bronze.pii_properties("stock_levels", spark),
    },
)
def bz_stock_levels_changes():
    changes = bronze.prepare(bronze.change_stream(spark, "stock_levels"), "stock_levels", spark)
    return bronze.with_change_date(bronze.protect(changes, "stock_levels", spark))
