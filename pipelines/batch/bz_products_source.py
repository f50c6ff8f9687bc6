"""tests.products as it is now in PostgreSQL: rules judged on the plaintext row, metadata added, PII
protected. A view: recomputed on each update, never stored."""

import sys

sys.path.append(spark.conf.get("bundle.sourcePath", "."))

import dlt  # noqa: E402

from inventory_bronze import bronze  # noqa: E402


@dlt.view
def bz_products_source():
    rows = bronze.snapshot(spark, "products")
    return bronze.protect(bronze.prepare(rows, "products", spark), "products", spark)
