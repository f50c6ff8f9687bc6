"""The changes of tests.order_details that bronze applies: the table's rules from conf/tables.yml as expectations."""

import sys

sys.path.append(spark.conf.get("bundle.sourcePath", "."))

import dlt  # noqa: E402

from inventory_bronze import bronze  # noqa: E402


@dlt.view
@dlt.expect_all(bronze.expectations("order_details", "warn"))
@dlt.expect_all_or_drop(bronze.expectations("order_details", "drop"))
@dlt.expect_all_or_fail(bronze.expectations("order_details", "fail"))
def bz_order_details_feed():
    return dlt.read_stream("bz_order_details_changes")
