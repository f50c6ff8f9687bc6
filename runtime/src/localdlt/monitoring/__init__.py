"""Databricks' documented event-log monitoring queries, kept as .sql files that run unchanged on
Databricks (over the published event log) and on open-source Spark (over the local event log)."""

from __future__ import annotations

from importlib import resources

from pyspark.sql import DataFrame, SparkSession

QUERIES = ("latest_update", "lineage", "data_quality", "updates")


def query_text(name: str) -> str:
    if name not in QUERIES:
        raise KeyError(f"unknown monitoring query {name!r}; known: {', '.join(QUERIES)}")
    return resources.files(__package__).joinpath(f"{name}.sql").read_text()


def register_event_log(spark: SparkSession, event_log_path: str) -> None:
    """Create the views the queries read: event_log_raw and latest_update."""
    spark.read.format("delta").load(event_log_path).createOrReplaceTempView("event_log_raw")
    spark.sql(query_text("latest_update")).createOrReplaceTempView("latest_update")


def run(spark: SparkSession, event_log_path: str, name: str) -> DataFrame:
    register_event_log(spark, event_log_path)
    return spark.sql(query_text(name))
