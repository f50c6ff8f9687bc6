"""The changes of tests.shipments that bronze applies: the table's rules from conf/tables.yml as expectations."""

import sys

sys.path.append(spark.conf.get("bundle.sourcePath", "."))

import dlt  # noqa: E402

from inventory_bronze import bronze  # noqa: E402


@dlt.view
@dlt.expect_all(bronze.expectations("shipments", "warn"))
@dlt.expect_all_or_drop(bronze.expectations("shipments", "drop"))
@dlt.expect_all_or_fail(bronze.expectations("shipments", "fail"))
def bz_shipments_feed():
    return dlt.read_stream("bz_shipments_changes")
