"""The changes of tests.orders that bronze applies: the table's rules from conf/tables.yml as expectations."""

import sys

sys.path.append(spark.conf.get("bundle.sourcePath", "."))

import dlt  # noqa: E402

from inventory_bronze import bronze  # noqa: E402


@dlt.view
@dlt.expect_all(bronze.expectations("orders", "warn"))
@dlt.expect_all_or_drop(bronze.expectations("orders", "drop"))
@dlt.expect_all_or_fail(bronze.expectations("orders", "fail"))
def bz_orders_feed():
    return dlt.read_stream("bz_orders_changes")
