"""The changes of tests.stock_levels that bronze applies: the table's rules from conf/tables.yml as expectations."""

import sys

sys.path.append(spark.conf.get("bundle.sourcePath", "."))

import dlt  # noqa: E402

from inventory_bronze import bronze  # noqa: E402


@dlt.view
@dlt.expect_all(bronze.expectations("stock_levels", "warn"))
@dlt.expect_all_or_drop(bronze.expectations("stock_levels", "drop"))
@dlt.expect_all_or_fail(bronze.expectations("stock_levels", "fail"))
def bz_stock_levels_feed():
    return dlt.read_stream("bz_stock_levels_changes")
