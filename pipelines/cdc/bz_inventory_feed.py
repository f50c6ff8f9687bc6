"""The changes of tests.inventory that bronze applies: the table's rules from conf/tables.yml as expectations."""

import sys

sys.path.append(spark.conf.get("bundle.sourcePath", "."))

import dlt  # noqa: E402

from inventory_bronze import bronze  # noqa: E402


@dlt.view
@dlt.expect_all(bronze.expectations("inventory", "warn"))
@dlt.expect_all_or_drop(bronze.expectations("inventory", "drop"))
@dlt.expect_all_or_fail(bronze.expectations("inventory", "fail"))
def bz_inventory_feed():
    return dlt.read_stream("bz_inventory_changes")
