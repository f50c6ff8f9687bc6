"""Empty DataFrames of a given schema, made in the JVM.

`spark.createDataFrame([], schema)` goes through an RDD and Python's serializer (about 50 ms a call, more in
a new process); analysis needs one per read of a dataset. A local relation built by the JVM's own
`createDataFrame(java.util.List, StructType)` has the same schema (names, types, nullability) at a fraction
of the cost and is never executed here.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType


def empty_frame(spark: SparkSession, schema: StructType) -> DataFrame:
    """An empty batch DataFrame with exactly `schema`."""
    jspark = spark._jsparkSession  # type: ignore[attr-defined]
    jschema = jspark.parseDataType(schema.json())
    jdf = jspark.createDataFrame(spark._jvm.java.util.ArrayList(), jschema)  # type: ignore[attr-defined]
    return DataFrame(jdf, spark)
