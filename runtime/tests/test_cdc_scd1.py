"""AUTO CDC, SCD type 1: every documented rule on small, exact tables."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from cdc_harness import CdcHarness
from localdlt.errors import CdcError

SCHEMA = "id INT, name STRING, city STRING, op STRING, seq INT"


def _h(spark, tmp_path, **kw):
    return CdcHarness(spark, tmp_path, SCHEMA, **kw)


def test_upserts_deletes_and_out_of_order_in_one_and_several_batches(spark, tmp_path):
    h = _h(spark, tmp_path)
    f = h.flow(keys=["id"], sequence_by="seq", apply_as_deletes="op = 'D'", except_column_list=["op"])
    h.append(
        [
            (1, "a2", "x", "U", 2),
            (1, "a1", "x", "U", 1),  # older, same batch: ignored
            (2, "b1", "y", "U", 1),
            (3, "c1", "z", "U", 1),
            (3, None, None, "D", 2),
        ]
    )
    h.append([(2, "b0", "y", "U", 0), (4, "d1", "w", "U", 5)])  # older than target for 2: ignored
    h.append([(3, "c0", "z", "U", 1)])  # late upsert older than the delete: tombstone keeps 3 deleted
    ctx = h.run(f)
    assert h.columns() == ["id", "name", "city", "seq"]
    assert h.rows() == [(1, "a2", "x", 2), (2, "b1", "y", 1), (4, "d1", "w", 5)]
    assert ctx.metrics.batches == 3
    # key 3 came and went inside one batch: nothing deleted from the target
    assert (ctx.metrics.num_upserted_rows, ctx.metrics.num_deleted_rows) == (3, 0)
    # a later update: newer events apply, older ones are still ignored
    h.append([(3, "c3", "z", "U", 3), (1, "a0", "x", "U", 1), (2, None, None, "D", 7)])
    ctx = h.run(f)
    assert h.rows() == [(1, "a2", "x", 2), (3, "c3", "z", 3), (4, "d1", "w", 5)]
    assert (ctx.metrics.num_upserted_rows, ctx.metrics.num_deleted_rows) == (1, 1)


def test_ignore_null_updates_combines_within_a_batch_and_after_a_delete(spark, tmp_path):
    h = _h(spark, tmp_path)
    f = h.flow(
        keys=["id"],
        sequence_by="seq",
        apply_as_deletes="op = 'D'",
        except_column_list=["op"],
        ignore_null_updates=True,
    )
    h.append([(1, "a", "x", "U", 1), (2, "b", "y", "U", 1)])
    h.append(
        [
            (1, None, "x2", "U", 3),
            (1, "a2", None, "U", 2),  # older than the other update of this batch, still newer than target
            (2, None, None, "D", 2),
            (2, None, "y3", "U", 3),  # after a delete: the row starts afresh (name stays NULL)
        ]
    )
    h.run(f)
    assert h.rows() == [(1, "a2", "x2", 3), (2, None, "y3", 3)]


def test_ignore_null_updates_column_lists(spark, tmp_path):
    h = _h(spark, tmp_path)
    f = h.flow(
        keys=["id"], sequence_by="seq", except_column_list=["op"], ignore_null_updates_column_list=["name"]
    )
    h.append([(1, "a", "x", "U", 1)])
    h.append([(1, None, None, "U", 2)])
    h.run(f)
    assert h.rows() == [(1, "a", None, 2)]
    h2 = _h(spark, tmp_path / "two")
    f2 = h2.flow(
        keys=["id"],
        sequence_by="seq",
        except_column_list=["op"],
        ignore_null_updates_except_column_list=["name"],
    )
    h2.append([(1, "a", "x", "U", 1)])
    h2.append([(1, None, None, "U", 2)])
    h2.run(f2)
    assert h2.rows() == [(1, None, "x", 2)]


def test_truncate_empties_the_target_and_later_events_still_apply(spark, tmp_path):
    h = _h(spark, tmp_path)
    f = h.flow(
        keys=["id"],
        sequence_by="seq",
        apply_as_deletes="op = 'D'",
        apply_as_truncates="op = 'T'",
        column_list=["id", "name"],
    )
    h.append([(1, "a", "x", "U", 1), (2, "b", "y", "U", 2)])
    h.append([(None, None, None, "T", 5), (3, "c", "z", "U", 6), (1, "a4", "x", "U", 4)])
    ctx = h.run(f)
    assert h.columns() == ["id", "name"]
    assert h.rows() == [(3, "c")]
    assert ctx.metrics.num_deleted_rows == 2
    h.append([(2, "b3", "y", "U", 3), (4, "d", "w", "U", 7)])  # 3 < truncate: ignored
    h.run(f)
    assert h.rows() == [(3, "c"), (4, "d")]


def test_where_filters_events_and_sequence_as_struct_and_expression(spark, tmp_path):
    h = _h(spark, tmp_path)
    f = h.flow(
        keys=["id"],
        sequence_by=F.struct("seq", "city"),
        where="name <> 'skip'",
        except_column_list=["op"],
    )
    h.append([(1, "a", "b", "U", 1), (1, "z", "a", "U", 1), (1, "skip", "z", "U", 9)])
    h.run(f)
    assert h.rows() == [(1, "a", "b", 1)]
    h2 = _h(spark, tmp_path / "two")
    f2 = h2.flow(keys=["id"], sequence_by="seq * -1", column_list=["name"])
    h2.append([(1, "a", "x", "U", 1), (1, "b", "y", "U", 2)])
    h2.run(f2)
    assert h2.columns() == ["id", "name"]  # keys are always kept
    assert h2.rows() == [(1, "a")]


def test_null_key_and_null_sequence_fail_the_flow_naming_the_column(spark, tmp_path):
    h = _h(spark, tmp_path)
    f = h.flow(keys=["id"], sequence_by="seq", except_column_list=["op"])
    h.append([(None, "a", "x", "U", 1)])
    with pytest.raises(CdcError, match="key column 'id'") as err:
        h.run(f)
    assert err.value.flow == "f"
    h2 = _h(spark, tmp_path / "two")
    f2 = h2.flow(name="g", keys=["id"], sequence_by="seq", except_column_list=["op"])
    h2.append([(1, "a", "x", "U", None)])
    with pytest.raises(CdcError, match=r"flow 'g'.*sequence_by \(seq\) is NULL"):
        h2.run(f2)


def test_tombstones_are_purged_after_the_threshold(spark, tmp_path):
    h = _h(spark, tmp_path, target_properties={"pipelines.cdc.tombstoneGCThresholdInSeconds": "0"})
    f = h.flow(keys=["id"], sequence_by="seq", apply_as_deletes="op = 'D'", except_column_list=["op"])
    h.append([(1, "a", "x", "U", 1)])
    h.append([(1, None, None, "D", 5)])
    h.run(f)
    assert h.rows() == []
    h.append([(1, "late", "x", "U", 3)])  # the tombstone is gone: the late upsert comes back
    h.run(f)
    assert h.rows() == [(1, "late", "x", 3)]


def test_key_state_is_appended_then_compacted_without_changing_results(spark, tmp_path, monkeypatch):
    """Batches append their keys' entries to the hidden state; a compaction (here after 3 appends) leaves
    one entry per key and drops expired tombstones, and later batches still see every key's sequence."""
    from localdlt.cdc import scd1

    monkeypatch.setattr(scd1, "COMPACT_AFTER_APPENDS", 3)
    h = _h(spark, tmp_path, target_properties={"pipelines.cdc.tombstoneGCThresholdInSeconds": "0"})
    f = h.flow(keys=["id"], sequence_by="seq", apply_as_deletes="op = 'D'", except_column_list=["op"])
    state = h.storage.state_path("target", "keys")
    entries = lambda: spark.read.format("delta").load(state).count()  # noqa: E731
    h.append([(1, "a", "x", "U", 1), (2, "b", "y", "U", 1), (3, "c", "z", "U", 1)])
    h.run(f)  # the first entries of an empty state: compact as they are
    h.append([(1, "a2", "x", "U", 2)])
    h.run(f)
    h.append([(2, "b2", "y", "U", 2), (3, None, None, "D", 2)])
    h.run(f)
    assert entries() == 6  # appended, not merged: keys 1, 2, 3 twice
    h.append([(1, "a3", "x", "U", 3), (2, "b0", "y", "U", 0)])  # 2 at 0 is older than what bronze has
    h.run(f)  # the third append since the compaction: compacted, 3's expired tombstone dropped
    assert entries() == 2
    assert h.rows() == [(1, "a3", "x", 3), (2, "b2", "y", 2)]
    h.append([(1, "a1", "x", "U", 1), (2, "b3", "y", "U", 3)])  # 1 at 1: older, ignored
    h.run(f)
    assert h.rows() == [(1, "a3", "x", 3), (2, "b3", "y", 3)]


def test_once_flow_and_two_flows_into_one_target(spark, tmp_path):
    h = _h(spark, tmp_path)
    initial = h.flow(
        name="initial", source="snap", once=True, keys=["id"], sequence_by="seq", except_column_list=["op"]
    )
    feed = h.flow(
        name="feed", keys=["id"], sequence_by="seq", apply_as_deletes="op = 'D'", except_column_list=["op"]
    )
    h.append([(1, "a", "x", "U", 0), (2, "b", "y", "U", 0)], name="snap")
    h.append([(1, "a1", "x", "U", 1), (2, None, None, "D", 1)])
    h.run(initial)
    h.run(feed)
    assert h.rows() == [(1, "a1", "x", 1)]
    h.append([(3, "c", "z", "U", 0)], name="snap")
    ctx = h.run(initial)  # once: not again
    assert ctx.metrics.batches == 0
    assert h.rows() == [(1, "a1", "x", 1)]


def test_a_column_the_source_adds_is_added_to_the_target(spark, tmp_path):
    """The source's schema grows between updates: the target gets the column (NULL in the rows it held),
    later events fill it, and the flow reports the columns it added (a WARN event in a pipeline)."""
    h = _h(spark, tmp_path)
    f = h.flow(keys=["id"], sequence_by="seq", apply_as_deletes="op = 'D'", except_column_list=["op"])
    h.append([(1, "a1", "x", "U", 1), (2, "b1", "y", "U", 1)])
    h.run(f)
    grown = spark.createDataFrame([(2, "b2", "y", "U", 2, "shelf-2")], SCHEMA + ", shelf STRING")
    grown.coalesce(1).write.format("delta").mode("append").option("mergeSchema", "true").save(h.source())
    changes: list = []
    ctx = h.context(f)
    ctx.on_schema_change = changes.append
    from localdlt import cdc

    cdc.run_cdc_flow(ctx)
    assert h.columns() == ["id", "name", "city", "seq", "shelf"]
    assert h.rows() == [(1, "a1", "x", 1, None), (2, "b2", "y", 2, "shelf-2")]
    assert [(c.added, c.widened, c.missing) for c in changes] == [(["`shelf` string"], [], [])]
    h.run(f)  # nothing more to add
    assert h.columns() == ["id", "name", "city", "seq", "shelf"]
