"""bz_customers: tests.customers in bronze, from a snapshot of the source on each update (AUTO CDC FROM SNAPSHOT):
new keys inserted, changed rows updated, keys gone from the source deleted (SCD type 1).

    tests.customers (JDBC snapshot) -> bz_customers_source: rules judged, metadata added, PII protected
        -> bz_customers_feed: the rules as expectations -> bz_customers (apply_changes_from_snapshot)
        -> bz_customers_quarantine: the rows a drop or fail rule rejects
"""

import dlt

from inventory_bronze.bronze import BronzeTable

table = BronzeTable.load(spark, "customers")  # conf/tables.yml's `customers` block


@dlt.view(name=table.names.source)
def source():
    """tests.customers as it is now in PostgreSQL; a view: recomputed on each update, never stored."""
    return table.protect(table.prepare(table.snapshot()))


@dlt.view(name=table.names.feed)
@dlt.expect_all(table.expectations("warn"))
@dlt.expect_all_or_drop(table.expectations("drop"))
@dlt.expect_all_or_fail(table.expectations("fail"))
def feed():
    return dlt.read(table.names.source)


dlt.create_streaming_table(
    table.names.target,
    comment=table.comment,
    cluster_by=table.config.cluster_by,
    table_properties=table.table_properties(),
)

dlt.apply_changes_from_snapshot(
    target=table.names.target,
    source=table.names.feed,
    keys=table.config.keys,
    stored_as_scd_type=table.scd_type,
    **table.snapshot_history_options,
)


@dlt.table(
    name=table.names.quarantine,
    comment="Rows of tests.customers rejected by the quality rules; dq_failed_rules names them.",
    table_properties=table.pii_properties(),
)
def quarantine():
    return table.quarantined(dlt.read(table.names.source))
