"""bz_returns: tests.returns in bronze, kept current from its log-based change feed (AUTO CDC, SCD type 1): the
latest row per key by WAL order, deletes and truncates applied."""

import sys

sys.path.append(spark.conf.get("bundle.sourcePath", "."))

import dlt  # noqa: E402

from inventory_bronze import bronze  # noqa: E402

TABLE = "returns"
config = bronze.table_config(TABLE, spark)

dlt.create_streaming_table(
    "bz_returns",
    comment="tests.returns in bronze: " + config.pattern.value + ", " + config.schedule,
    cluster_by=config.cluster_by,
    table_properties=bronze.table_properties(TABLE, spark),
)

dlt.apply_changes(
    target="bz_returns",
    source="bz_returns_feed",
    keys=config.keys,
    sequence_by=config.sequence_by,
    apply_as_deletes="_op = 'delete'",
    apply_as_truncates="_op = 'truncate'",
    except_column_list=bronze.internal_columns(TABLE, spark),
    ignore_null_updates_column_list=bronze.large_text_columns(TABLE) or None,
)
