"""The rows of tests.suppliers that bronze takes: the table's rules from conf/tables.yml as expectations."""

import sys

sys.path.append(spark.conf.get("bundle.sourcePath", "."))

import dlt  # noqa: E402

from inventory_bronze import bronze  # noqa: E402


@dlt.view
@dlt.expect_all(bronze.expectations("suppliers", "warn"))
@dlt.expect_all_or_drop(bronze.expectations("suppliers", "drop"))
@dlt.expect_all_or_fail(bronze.expectations("suppliers", "fail"))
def bz_suppliers_feed():
    return dlt.read("bz_suppliers_source")
