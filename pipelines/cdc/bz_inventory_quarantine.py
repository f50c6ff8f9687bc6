"""Changes of tests.inventory that a drop or fail rule rejects, with the rules they failed."""

import sys

sys.path.append(spark.conf.get("bundle.sourcePath", "."))

import dlt  # noqa: E402

from inventory_bronze import bronze  # noqa: E402


@dlt.table(
    comment="Changes of tests.inventory rejected by the quality rules; dq_failed_rules names them.",
    table_properties=bronze.pii_properties("inventory", spark),
    spark_conf=bronze.QUARANTINE_TRIGGER,
)
def bz_inventory_quarantine():
    return bronze.quarantined(dlt.read_stream("bz_inventory_changes"), "inventory")
