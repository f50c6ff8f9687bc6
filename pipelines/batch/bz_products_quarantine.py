"""Rows of tests.products that a drop or fail rule rejects, with the rules they failed (as of this update)."""

import sys

sys.path.append(spark.conf.get("bundle.sourcePath", "."))

import dlt  # noqa: E402

from inventory_bronze import bronze  # noqa: E402


@dlt.table(
    comment="Rows of tests.products rejected by the quality rules; dq_failed_rules names them.",
    table_properties=bronze.pii_properties("products", spark),
)
def bz_products_quarantine():
    return bronze.quarantined(dlt.read("bz_products_source"), "products")
