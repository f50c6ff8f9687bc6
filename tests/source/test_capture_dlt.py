"""The `pgcdc` stream as a declarative pipeline's source in our local runtime: a `@dlt.view` over the
stream feeds `apply_changes` (SCD type 1); after snapshot + changes + a truncate, the target table equals
the source table, and the unchanged TOAST column keeps its value."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from inventory_bronze.source.capture_slot import CaptureNames, drop_capture, setup_capture

PIPELINE = """\
# ruff: noqa: F821
import dlt
from pyspark.sql import functions as F

from inventory_bronze.source.capture import register

register(spark)


@dlt.view
def order_changes():
    return (
        spark.readStream.format("pgcdc")
        .option("table", spark.conf.get("capture.table"))
        .option("secretsFile", spark.conf.get("capture.secretsFile"))
        .load()
    )


dlt.create_streaming_table("orders")
dlt.apply_changes(
    target="orders",
    source="order_changes",
    keys=["Order_ID"],
    sequence_by=F.col("_seq"),
    apply_as_deletes=F.expr("_op = 'delete'"),
    apply_as_truncates=F.expr("_op = 'truncate'"),
    except_column_list=["_op", "_lsn", "_commit_ts", "_seq", "_unchanged_cols"],
    ignore_null_updates_column_list=["Notes"],
)
"""

NOTES = "n" * 5000


def _state(spark: Any, storage: Path) -> list[tuple]:
    df = spark.read.format("delta").load(str(storage / "tables" / "orders"))
    return sorted(tuple(r) for r in df.select("Order_ID", "Status", "Total", "Notes").collect())


def _source(pg_server: Any) -> list[tuple]:
    with pg_server.connect(autocommit=True) as conn:
        rows = conn.execute('SELECT "Order_ID", "Status", "Total", "Notes" FROM tests.cap_dlt').fetchall()
    return sorted(tuple(r) for r in rows)


@pytest.mark.slow
def test_pgcdc_feeds_apply_changes_in_the_local_runtime(spark, pg_server, tmp_path: Path) -> None:
    from localdlt import run_update

    names = CaptureNames.for_table("tests.cap_dlt")
    with pg_server.connect(autocommit=True) as conn:
        drop_capture(conn, names)
        conn.execute("DROP TABLE IF EXISTS tests.cap_dlt")
        conn.execute(
            'CREATE TABLE tests.cap_dlt ("Order_ID" integer PRIMARY KEY, "Status" text, "Total" numeric(10,2), '
            '"Notes" text)'
        )
        conn.execute('ALTER TABLE tests.cap_dlt ALTER COLUMN "Notes" SET STORAGE EXTERNAL')
        conn.execute(
            "INSERT INTO tests.cap_dlt SELECT g, 'new', g * 1.5, %s FROM generate_series(1, 50) g", (NOTES,)
        )
        setup_capture(conn, names)
        conn.execute("""UPDATE tests.cap_dlt SET "Status" = 'paid' WHERE "Order_ID" <= 10""")
    pipeline = tmp_path / "orders_pipeline.py"
    pipeline.write_text(PIPELINE)
    storage = tmp_path / "storage"
    conf = {"capture.table": names.table, "capture.secretsFile": os.environ["INVENTORY_BRONZE_SECRETS_FILE"]}
    try:
        result = run_update([pipeline], storage, conf=conf, spark=spark)
        assert result.ok, result.error
        assert _state(spark, storage) == _source(pg_server)
        with pg_server.connect(autocommit=True) as conn:
            conn.execute(
                """UPDATE tests.cap_dlt SET "Status" = 'shipped' WHERE "Order_ID" BETWEEN 5 AND 15"""
            )
            conn.execute('DELETE FROM tests.cap_dlt WHERE "Order_ID" > 45')
            conn.execute("INSERT INTO tests.cap_dlt VALUES (100, 'new', 9.99, NULL)")
        result = run_update([pipeline], storage, conf=conf, spark=spark)
        assert result.ok, result.error
        state = _state(spark, storage)
        assert state == _source(pg_server)
        assert dict((r[0], r[3]) for r in state)[7] == NOTES  # unchanged TOAST value kept
        with pg_server.connect(autocommit=True) as conn:
            conn.execute("TRUNCATE tests.cap_dlt")
            conn.execute("INSERT INTO tests.cap_dlt VALUES (200, 'new', 1.00, 'x')")
        result = run_update([pipeline], storage, conf=conf, spark=spark)
        assert result.ok, result.error
        assert _state(spark, storage) == _source(pg_server)
    finally:
        with pg_server.connect(autocommit=True) as conn:
            drop_capture(conn, names)
            conn.execute("DROP TABLE IF EXISTS tests.cap_dlt")
