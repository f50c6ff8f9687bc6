"""bz_customers: tests.customers in bronze, from a snapshot of the source on each update (AUTO CDC FROM SNAPSHOT):
new keys inserted, changed rows updated, keys gone from the source deleted (SCD type 1) or closed (SCD type 2,
history kept where it is cheap: the small daily tables)."""

import sys

sys.path.append(spark.conf.get("bundle.sourcePath", "."))

import dlt  # noqa: E402

from inventory_bronze import bronze  # noqa: E402

TABLE = "customers"
config = bronze.table_config(TABLE, spark)

dlt.create_streaming_table(
    "bz_customers",
    comment="tests.customers in bronze: " + config.pattern.value + ", " + config.schedule,
    cluster_by=config.cluster_by,
    table_properties=bronze.table_properties(TABLE, spark),
)

dlt.apply_changes_from_snapshot(
    target="bz_customers",
    source="bz_customers_feed",
    keys=config.keys,
    stored_as_scd_type=bronze.scd_type(TABLE, spark),
    **bronze.snapshot_history_options(TABLE, spark),
)
