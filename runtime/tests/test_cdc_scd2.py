"""AUTO CDC, SCD type 2: history rules on small, exact tables."""

from __future__ import annotations

from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from cdc_harness import CdcHarness

SCHEMA = "id INT, name STRING, city STRING, op STRING, seq INT"


def test_versions_deletes_late_events_and_untracked_columns(spark, tmp_path):
    h = CdcHarness(spark, tmp_path, SCHEMA)
    f = h.flow(
        keys=["id"],
        sequence_by="seq",
        apply_as_deletes="op = 'D'",
        except_column_list=["op", "seq"],
        stored_as_scd_type="2",
        track_history_except_column_list=["city"],
    )
    h.append(
        [
            (1, "a", "x", "U", 1),
            (1, "a", "y", "U", 2),  # untracked change: in place
            (1, "b", "y", "U", 5),  # tracked change: new version
            (2, "p", "q", "U", 1),
            (2, None, None, "D", 4),  # closes the current version
        ]
    )
    h.append([(1, "c", "z", "U", 3), (2, "p2", "q", "U", 6)])  # late: placed at 3; 2 comes back at 6
    ctx = h.run(f)
    assert h.columns() == ["id", "name", "city", "__START_AT", "__END_AT"]
    assert h.rows() == [
        (1, "a", "y", 1, 3),
        (1, "b", "y", 5, None),
        (1, "c", "z", 3, 5),
        (2, "p", "q", 1, 4),
        (2, "p2", "q", 6, None),
    ]
    # 2 was inserted and closed within the update: its version arrives closed, nothing current was ended
    assert (ctx.metrics.num_upserted_rows, ctx.metrics.num_deleted_rows) == (6, 0)
    # a later update: a duplicate changes nothing, an in-place change of the current version applies
    h.append([(1, "b", "y", "U", 5), (1, "b", "w", "U", 7), (2, None, None, "D", 8)])
    ctx = h.run(f)
    assert (ctx.metrics.num_upserted_rows, ctx.metrics.num_deleted_rows) == (2, 1)
    assert (1, "b", "w", 5, None) in h.rows() and (2, "p2", "q", 6, 8) in h.rows() and len(h.rows()) == 5


def test_sequence_struct_types_start_and_end_and_track_history_column_list(spark, tmp_path):
    h = CdcHarness(spark, tmp_path, SCHEMA)
    f = h.flow(
        keys=["id"],
        sequence_by=F.struct("seq", "op"),
        column_list=["id", "name", "city"],
        stored_as_scd_type=2,
        track_history_column_list=["name"],
        ignore_null_updates=True,
    )
    h.append([(1, "a", "x", "A", 1), (1, None, "y", "A", 2), (1, "b", None, "A", 3)])
    h.run(f)
    schema: StructType = spark.read.format("delta").load(h.target_path).schema
    assert schema["__START_AT"].dataType.simpleString() == "struct<seq:int,op:string>"
    rows = [(r[0], r[1], r[2], r[3][0], r[4][0] if r[4] else None) for r in h.rows()]
    assert sorted(rows, key=repr) == sorted([(1, "a", "y", 1, 3), (1, "b", "y", 3, None)], key=repr)


def test_a_column_the_source_adds_is_added_to_the_history(spark, tmp_path):
    """The source's schema grows between updates: the target and the flow's event state get the column;
    the versions held keep NULL, a change that sets it opens a new version."""
    h = CdcHarness(spark, tmp_path, SCHEMA)
    f = h.flow(keys=["id"], sequence_by="seq", except_column_list=["op", "seq"], stored_as_scd_type="2")
    h.append([(1, "a", "x", "U", 1)])
    h.run(f)
    grown = spark.createDataFrame([(1, "a", "x", "U", 2, "shelf-1")], SCHEMA + ", shelf STRING")
    grown.coalesce(1).write.format("delta").mode("append").option("mergeSchema", "true").save(h.source())
    h.run(f)
    assert h.columns() == ["id", "name", "city", "__START_AT", "__END_AT", "shelf"]
    assert h.rows() == [(1, "a", "x", 1, 2, None), (1, "a", "x", 2, None, "shelf-1")]
