"""The rows of tests.products that bronze takes: the table's rules from conf/tables.yml as expectations."""

import sys

sys.path.append(spark.conf.get("bundle.sourcePath", "."))

import dlt  # noqa: E402

from inventory_bronze import bronze  # noqa: E402


@dlt.view
@dlt.expect_all(bronze.expectations("products", "warn"))
@dlt.expect_all_or_drop(bronze.expectations("products", "drop"))
@dlt.expect_all_or_fail(bronze.expectations("products", "fail"))
def bz_products_feed():
    return dlt.read("bz_products_source")
