"""The rows of tests.warehouses that bronze takes: the table's rules from conf/tables.yml as expectations."""

import sys

sys.path.append(spark.conf.get("bundle.sourcePath", "."))

import dlt  # noqa: E402

from inventory_bronze import bronze  # noqa: E402


@dlt.view
@dlt.expect_all(bronze.expectations("warehouses", "warn"))
@dlt.expect_all_or_drop(bronze.expectations("warehouses", "drop"))
@dlt.expect_all_or_fail(bronze.expectations("warehouses", "fail"))
def bz_warehouses_feed():
    return dlt.read("bz_warehouses_source")
