"""bz_products: tests.products in bronze, from a snapshot of the source on each update (AUTO CDC FROM SNAPSHOT):
new keys inserted, changed rows closed and a new version opened, keys gone from the source closed
(SCD type 2: history kept, cheap for this small daily table).

    tests.products (JDBC snapshot) -> bz_products_source: rules judged, metadata added, PII protected
        -> bz_products_feed: the rules as expectations -> bz_products (apply_changes_from_snapshot)
        -> bz_products_quarantine: the rows a drop or fail rule rejects
"""

import dlt

from inventory_bronze.bronze import BronzeTable

table = BronzeTable.load(spark, "products")  # conf/tables.yml's `products` block


@dlt.view(name=table.names.source)
def source():
    """tests.products as it is now in PostgreSQL; a view: recomputed on each update, never stored."""
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
    comment="Rows of tests.products rejected by the quality rules; dq_failed_rules names them.",
    table_properties=table.pii_properties(),
)
def quarantine():
    return table.quarantined(dlt.read(table.names.source))
