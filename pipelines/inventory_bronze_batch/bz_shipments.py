"""bz_shipments: tests.shipments in bronze, kept current from its log-based change feed (AUTO CDC, SCD type 1): the
latest row per key by WAL order, deletes and truncates applied. Hourly: each
update applies the changes since the last one.

    tests.shipments (WAL) -> bz_shipments_changes: every change, PII protected, append-only archive
        -> bz_shipments_feed: the rules as expectations -> bz_shipments (apply_changes)
        -> bz_shipments_quarantine: the changes a drop or fail rule rejects
"""

import dlt

from inventory_bronze.bronze import BronzeTable

table = BronzeTable.load(spark, "shipments")  # conf/tables.yml's `shipments` block


@dlt.table(
    name=table.names.changes,
    comment="Every change of tests.shipments (log-based capture), PII protected.",
    partition_cols=["_change_date"],
    table_properties=table.change_archive_properties(),
)
def changes():
    return table.with_change_date(table.protect(table.prepare(table.change_stream())))


@dlt.view(name=table.names.feed)
@dlt.expect_all(table.expectations("warn"))
@dlt.expect_all_or_drop(table.expectations("drop"))
@dlt.expect_all_or_fail(table.expectations("fail"))
def feed():
    return dlt.read_stream(table.names.changes)


dlt.create_streaming_table(
    table.names.target,
    comment=table.comment,
    cluster_by=table.config.cluster_by,
    table_properties=table.table_properties(),
)

dlt.apply_changes(
    target=table.names.target,
    source=table.names.feed,
    keys=table.config.keys,
    sequence_by=table.config.sequence_by,
    apply_as_deletes="_op = 'delete'",
    apply_as_truncates="_op = 'truncate'",
    except_column_list=table.internal_columns,
    ignore_null_updates_column_list=table.large_text_columns,
)


@dlt.table(
    name=table.names.quarantine,
    comment="Changes of tests.shipments rejected by the quality rules; dq_failed_rules names them.",
    table_properties=table.pii_properties(),
)
def quarantine():
    return table.quarantined(dlt.read_stream(table.names.changes))
