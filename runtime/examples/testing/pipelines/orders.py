"""Orders: raw orders stream in, a view cleans them, a streaming table checks them and a materialized view
sums them per customer. In production `raw_orders` reads JSON files with Auto Loader; its test gives rows."""
# ruff: noqa: F821 - `spark` is a global of pipeline files, as on Databricks

from pyspark import pipelines as dp
from pyspark.sql import functions as F


@dp.table(comment="Orders as they land, one JSON file each.")
def raw_orders():
    landing = spark.conf.get("orders.landing")
    return spark.readStream.format("cloudFiles").option("cloudFiles.format", "json").load(landing)


@dp.temporary_view
@dp.expect_or_drop("has_customer", "customer IS NOT NULL")
def cleaned_orders():
    return spark.readStream.table("raw_orders").withColumn("amount", F.round("amount", 2))


@dp.table(comment="Every order with a customer; negative amounts are kept and counted.")
@dp.expect("positive_amount", "amount > 0")
def orders():
    return spark.readStream.table("cleaned_orders")


@dp.materialized_view(comment="Revenue and number of orders per customer.")
def revenue_by_customer():
    return (
        spark.read.table("orders")
        .groupBy("customer")
        .agg(F.sum("amount").alias("revenue"), F.count("*").alias("orders"))
    )
