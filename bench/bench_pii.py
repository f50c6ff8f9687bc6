"""Benchmark (not a timed test): encrypt the customers' PII columns of N rows in Spark with
inventory_bronze.pii.protect (pandas UDFs) and print rows/s.

    .venv/bin/python bench/bench_pii.py [--rows 100000]

The rows are customers-shaped: Customer_Name, Email (encrypt_and_hash), Phone, Address, Date_Of_Birth,
as conf/tables.yml treats them, i.e. 5 ciphertexts and 1 hash per row. A random key is used (no secret is
read). A warm-up on 1,000 rows starts the Python workers first; then one timed run writes to the `noop`
sink, so only generating and encrypting are measured.
"""

from __future__ import annotations

import argparse
import time

from pyspark.sql import functions as F

from inventory_bronze import config, pii
from inventory_bronze.secrets import SecretValue
from inventory_bronze.spark_session import get_spark
from inventory_devkit import project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    spark = get_spark("bench-pii")
    treatments = config.load(project.CONFIG_PATH, check_source=False).table("customers").pii
    keys = pii.PiiKeys.from_secret(SecretValue(pii.generate_key(), pii.DEFAULT_KEY_SECRET, "bench"))

    def customers(n: int):  # noqa: ANN202
        return spark.range(n).select(
            F.col("id").cast("int").alias("Customer_ID"),
            F.concat(F.lit("Customer Name "), F.col("id")).alias("Customer_Name"),
            F.concat(F.lit("customer"), F.col("id"), F.lit("@example.org")).alias("Email"),
            F.concat(F.lit("+49 30 "), F.lpad(F.col("id").cast("string"), 7, "0")).alias("Phone"),
            F.concat(F.col("id"), F.lit(" Long Street, 10115 Berlin")).alias("Address"),
            F.date_add(F.lit("1950-01-01").cast("date"), (F.col("id") % 20000).cast("int")).alias(
                "Date_Of_Birth"
            ),
        )

    pii.protect(customers(1000), "customers", treatments, keys=keys).write.format("noop").mode(
        "overwrite"
    ).save()
    protected = pii.protect(customers(args.rows), "customers", treatments, keys=keys)
    start = time.perf_counter()
    protected.write.format("noop").mode("overwrite").save()
    seconds = time.perf_counter() - start
    master = spark.sparkContext.master
    print(
        f"pii.protect: {args.rows:,} rows x {len(treatments)} PII columns in {seconds:.2f} s = "
        f"{args.rows / seconds:,.0f} rows/s ({args.rows * len(treatments) / seconds:,.0f} values/s), "
        f"master {master}"
    )


if __name__ == "__main__":
    main()
