# ruff: noqa: F821
# A pipeline as it would run on Databricks: a change feed (a Delta folder named by the configuration),
# applied as SCD type 1 and as SCD type 2.
import dlt
from pyspark.sql import functions as F


@dlt.view
def customer_changes():
    return spark.readStream.format("delta").option("maxFilesPerTrigger", 1).load(spark.conf.get("cdc.source"))


dlt.create_streaming_table("customers")
dlt.apply_changes(
    target="customers",
    source="customer_changes",
    keys=["id"],
    sequence_by="seq",
    apply_as_deletes="op = 'D'",
    except_column_list=["op"],
    ignore_null_updates=True,
)

dlt.create_streaming_table("customers_history")
dlt.create_auto_cdc_flow(
    target="customers_history",
    source="customer_changes",
    keys=["id"],
    sequence_by=F.col("seq"),
    apply_as_deletes=F.expr("op = 'D'"),
    except_column_list=["op", "seq"],
    stored_as_scd_type="2",
    name="customers_history_flow",
)
