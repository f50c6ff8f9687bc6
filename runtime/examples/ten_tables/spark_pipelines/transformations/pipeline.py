"""The ten-table example for open-source Spark Declarative Pipelines (pyspark.pipelines)."""

from pyspark import pipelines as dp
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

spark = SparkSession.active()
LANDING = spark.conf.get("example.landing")


@dp.table
def orders_raw():
    return (
        spark.readStream.format("json")
        .schema("order_id BIGINT, customer_id BIGINT, ordered_at TIMESTAMP, status STRING")
        .load(f"{LANDING}/orders")
    )


@dp.table
def order_lines_raw():
    return (
        spark.readStream.format("json")
        .schema("order_id BIGINT, line_no INT, product_id BIGINT, quantity INT, unit_price DECIMAL(12,2)")
        .load(f"{LANDING}/order_lines")
    )


# no cluster_by: spark-pipelines 4.2 passes it to Delta as a partition transform, which Delta refuses
@dp.materialized_view
def customers():
    return spark.range(1, 2001).select(
        F.col("id").alias("customer_id"),
        F.concat(F.lit("customer-"), F.col("id")).alias("name"),
        F.element_at(
            F.array(F.lit("north"), F.lit("south"), F.lit("east"), F.lit("west")),
            (F.col("id") % 4 + 1).cast("int"),
        ).alias("region"),
    )


@dp.materialized_view
def products():
    return spark.range(1, 501).select(
        F.col("id").alias("product_id"),
        F.concat(F.lit("product-"), F.col("id")).alias("name"),
        (F.col("id") % 10).cast("string").alias("category"),
    )


@dp.table
def orders():
    return spark.readStream.table("orders_raw").where("customer_id IS NOT NULL")


@dp.table
def order_lines():
    return spark.readStream.table("order_lines_raw").where("quantity > 0 AND unit_price > 0")


@dp.table
def large_lines():
    return spark.readStream.table("order_lines").where("quantity * unit_price > 1000")


@dp.materialized_view
def revenue_by_product():
    return (
        spark.read.table("order_lines")
        .join(spark.read.table("products"), "product_id")
        .groupBy("product_id", "category")
        .agg(F.sum(F.col("quantity") * F.col("unit_price")).alias("revenue"), F.count("*").alias("lines"))
    )


@dp.materialized_view
def orders_by_region():
    return (
        spark.read.table("orders")
        .join(spark.read.table("customers"), "customer_id")
        .groupBy("region", "status")
        .count()
    )


@dp.materialized_view
def daily_revenue():
    orders = spark.read.table("orders").select("order_id", F.to_date("ordered_at").alias("day"))
    return (
        spark.read.table("order_lines")
        .join(orders, "order_id")
        .groupBy("day")
        .agg(F.sum(F.col("quantity") * F.col("unit_price")).alias("revenue"))
    )
