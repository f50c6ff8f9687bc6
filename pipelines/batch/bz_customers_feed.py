"""The rows of tests.customers that bronze takes: the table's rules from conf/tables.yml as expectations."""

import sys

sys.path.append(spark.conf.get("bundle.sourcePath", "."))

import dlt  # noqa: E402

from inventory_bronze import bronze  # noqa: E402


@dlt.view
@dlt.expect_all(bronze.expectations("customers", "warn"))
@dlt.expect_all_or_drop(bronze.expectations("customers", "drop"))
@dlt.expect_all_or_fail(bronze.expectations("customers", "fail"))
def bz_customers_feed():
    return dlt.read("bz_customers_source")
