"""Rows of tests.customers that a drop or fail rule rejects, with the rules they failed (as of this update)."""

import sys

sys.path.append(spark.conf.get("bundle.sourcePath", "."))

import dlt  # noqa: E402

from inventory_bronze import bronze  # noqa: E402


@dlt.table(
    comment="Rows of tests.customers rejected by the quality rules; dq_failed_rules names them.",
    table_properties=bronze.pii_properties("customers", spark),
)
def bz_customers_quarantine():
    return bronze.quarantined(dlt.read("bz_customers_source"), "customers")
