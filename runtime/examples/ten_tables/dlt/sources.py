"""Landing zone read as streams (the local stand-in for Auto Loader) and two reference tables."""

import dlt
from pyspark.sql import functions as F

LANDING = spark.conf.get("example.landing")


@dlt.table(comment="Orders as they land, one row per JSON record.")
def orders_raw():
    return (
        spark.readStream.format("json")
        .schema("order_id BIGINT, customer_id BIGINT, ordered_at TIMESTAMP, status STRING")
        .load(f"{LANDING}/orders")
    )


@dlt.table(comment="Order lines as they land.")
def order_lines_raw():
    return (
        spark.readStream.format("json")
        .schema("order_id BIGINT, line_no INT, product_id BIGINT, quantity INT, unit_price DECIMAL(12,2)")
        .load(f"{LANDING}/order_lines")
    )


@dlt.table(comment="Reference: customers.", cluster_by=["customer_id"])
def customers():
    return spark.range(1, 2001).select(
        F.col("id").alias("customer_id"),
        F.concat(F.lit("customer-"), F.col("id")).alias("name"),
        F.element_at(
            F.array(F.lit("north"), F.lit("south"), F.lit("east"), F.lit("west")),
            (F.col("id") % 4 + 1).cast("int"),
        ).alias("region"),
    )


@dlt.table(comment="Reference: products.")
def products():
    return spark.range(1, 501).select(
        F.col("id").alias("product_id"),
        F.concat(F.lit("product-"), F.col("id")).alias("name"),
        (F.col("id") % 10).cast("string").alias("category"),
    )
