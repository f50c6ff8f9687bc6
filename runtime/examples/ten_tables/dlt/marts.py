"""Materialized views recomputed on each update."""

import dlt
from pyspark.sql import functions as F


@dlt.table(comment="Revenue per product.")
def revenue_by_product():
    lines = dlt.read("order_lines")
    return (
        lines.join(dlt.read("products"), "product_id")
        .groupBy("product_id", "category")
        .agg(F.sum(F.col("quantity") * F.col("unit_price")).alias("revenue"), F.count("*").alias("lines"))
    )


@dlt.table(comment="Orders per region and status.")
def orders_by_region():
    return dlt.read("orders").join(dlt.read("customers"), "customer_id").groupBy("region", "status").count()


@dlt.table(comment="Daily revenue.")
def daily_revenue():
    orders = dlt.read("orders").select("order_id", F.to_date("ordered_at").alias("day"))
    return (
        dlt.read("order_lines")
        .join(orders, "order_id")
        .groupBy("day")
        .agg(F.sum(F.col("quantity") * F.col("unit_price")).alias("revenue"))
    )
