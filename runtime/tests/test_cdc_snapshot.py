"""AUTO CDC FROM SNAPSHOT: a dataset source and a function source, SCD type 1 and 2."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cdc_harness import CdcHarness
from localdlt.cdc.common import delta_exists
from localdlt.errors import FlowError

SCHEMA = "id INT, name STRING, city STRING"


def test_function_source_scd1_and_scd2(spark, tmp_path):
    snapshots = {
        1: [(1, "a", "x"), (2, "b", "y"), (3, "c", "z")],
        2: [(1, "a", "x"), (2, "b2", "y"), (4, "d", "w")],  # 2 changed, 3 gone, 4 new, 1 unchanged
        3: [(1, "a", "x2"), (2, "b2", "y"), (4, "d", "w")],  # only an untracked column of 1 changed
    }
    calls: list = []

    def source(latest):
        calls.append(latest)
        nxt = 1 if latest is None else latest + 1
        if nxt not in snapshots or nxt > limit[0]:
            return None
        return spark.createDataFrame(snapshots[nxt], SCHEMA), nxt

    limit = [2]
    h1 = CdcHarness(spark, tmp_path / "one", SCHEMA)
    f1 = h1.snapshot_flow(source=source, keys=["id"])
    ctx = h1.run(f1)
    assert h1.rows() == [(1, "a", "x"), (2, "b2", "y"), (4, "d", "w")]
    assert calls == [None, 1, 2]
    assert (ctx.metrics.num_upserted_rows, ctx.metrics.num_deleted_rows) == (3 + 2, 1)

    calls.clear()
    h2 = CdcHarness(spark, tmp_path / "two", SCHEMA)
    f2 = h2.snapshot_flow(
        source=source, keys=["id"], stored_as_scd_type=2, track_history_except_column_list=["city"]
    )
    h2.run(f2)
    limit[0] = 3
    ctx = h2.run(f2)  # a later update continues from the latest version
    assert calls == [None, 1, 2, 2, 3]
    assert h2.columns() == ["id", "name", "city", "__START_AT", "__END_AT"]
    assert h2.rows() == [
        (1, "a", "x2", 1, None),
        (2, "b", "y", 1, 2),
        (2, "b2", "y", 2, None),
        (3, "c", "z", 1, 2),
        (4, "d", "w", 2, None),
    ]
    assert (ctx.metrics.num_upserted_rows, ctx.metrics.num_deleted_rows) == (1, 0)


def test_dataset_source_scd1(spark, tmp_path):
    h = CdcHarness(spark, tmp_path, SCHEMA)
    f = h.snapshot_flow(source="snap", keys=["id"])
    path = h.source("snap")
    spark.createDataFrame([(1, "a", "x"), (2, "b", "y")], SCHEMA).write.format("delta").mode(
        "overwrite"
    ).save(path)
    h.run(f)
    spark.createDataFrame([(2, "b", "y2"), (3, "c", "z")], SCHEMA).write.format("delta").mode(
        "overwrite"
    ).save(path)
    ctx = h.run(f)
    assert h.rows() == [(2, "b", "y2"), (3, "c", "z")]
    assert (ctx.metrics.num_upserted_rows, ctx.metrics.num_deleted_rows) == (2, 1)


def test_a_crash_before_the_state_is_saved_loses_no_later_change(spark, tmp_path):
    """Killed after the target's commit, before snapshot.json: a dataset source is read anew on the rerun
    (the source moved on meanwhile), and that snapshot is applied, not skipped as already committed."""
    for scd in (1, 2):
        h = CdcHarness(spark, tmp_path / f"scd{scd}", SCHEMA)
        path = h.source("snap")
        f = h.snapshot_flow(source="snap", keys=["id"], stored_as_scd_type=scd)

        def source(rows, path=path):
            spark.createDataFrame(rows, SCHEMA).write.format("delta").mode("overwrite").save(path)

        source([(1, "a", "x"), (2, "b", "y")])
        h.run(f)
        state = next((h.root / "storage").rglob("snapshot.json"))
        saved = state.read_bytes()
        source([(1, "a", "x2"), (2, "b", "y")])
        h.run(f)
        state.write_bytes(saved)  # as if killed between the target's commit and the state's
        source([(1, "a", "x3"), (2, "b", "y"), (3, "c", "z")])
        h.run(f)
        current = sorted(r[:3] for r in h.rows() if scd == 1 or r[-1] is None)
        assert current == [(1, "a", "x3"), (2, "b", "y"), (3, "c", "z")], scd


def _one_snapshot_source(spark, rows, schema=SCHEMA):
    def source(latest):
        return None if latest is not None else (spark.createDataFrame(rows, schema), 1)

    return source


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(1, "a", "x"), (None, "b", "y")], r"key \(id=None\) is NULL; keys \['id'\] must be NOT NULL"),
        ([(1, "a", "x"), (1, "a2", "x"), (2, "b", "y")], r"has 2 rows for key \(id=1\); keys \['id'\] must"),
        # both: the NULL key is the one reported
        ([(1, "a", "x"), (1, "a2", "x"), (None, "b", "y")], r"key \(id=None\) is NULL"),
    ],
    ids=["null-key", "duplicate-key", "null-before-duplicate"],
)
def test_a_snapshot_with_a_bad_key_fails_and_writes_nothing(spark, tmp_path, rows, message):
    h = CdcHarness(spark, tmp_path, SCHEMA)
    flow = h.snapshot_flow(source=_one_snapshot_source(spark, rows), keys=["id"])
    with pytest.raises(FlowError, match=message):
        h.run(flow)
    assert not delta_exists(spark, h.target_path) or h.rows() == []


def test_scd2_counts_each_kind_of_change_once(spark, tmp_path):
    """New and changed keys are upserts (a changed key once, though it closes a version and opens one), gone
    keys deletes, unchanged keys nothing."""
    h = CdcHarness(spark, tmp_path, SCHEMA)
    state = {"rows": [(1, "a", "x"), (2, "b", "y"), (3, "c", "z"), (5, "e", "v")]}

    def source(latest):
        version = 1 if latest is None else latest + 1
        return None if version > state["version"] else (spark.createDataFrame(state["rows"], SCHEMA), version)

    state["version"] = 1
    flow = h.snapshot_flow(source=source, keys=["id"], stored_as_scd_type=2)
    ctx = h.run(flow)
    assert (ctx.metrics.num_upserted_rows, ctx.metrics.num_deleted_rows) == (4, 0)
    state["rows"] = [(1, "a", "x"), (2, "b2", "y"), (4, "d", "w"), (5, "e2", "v2")]  # 2, 5 changed; 3 gone
    state["version"] = 2
    ctx = h.run(flow)
    assert (ctx.metrics.num_upserted_rows, ctx.metrics.num_deleted_rows) == (3, 1)
    assert len(h.rows()) == 7  # 1, 2, 2', 3 (closed), 4, 5, 5'


def test_an_unchanged_snapshot_writes_nothing(spark, tmp_path):
    """A snapshot equal to what the target reflects leaves the table's version alone (SCD 1 and 2)."""
    from localdlt.freshness import delta_version

    for scd in (1, 2):
        h = CdcHarness(spark, tmp_path / f"scd{scd}", SCHEMA)
        path = h.source("snap")
        spark.createDataFrame([(1, "a", "x"), (2, "b", "y")], SCHEMA).write.format("delta").mode(
            "overwrite"
        ).save(path)
        f = h.snapshot_flow(source="snap", keys=["id"], stored_as_scd_type=scd)
        h.run(f)
        version, rows = delta_version(h.target_path), h.rows()
        ctx = h.run(f)
        assert delta_version(h.target_path) == version
        assert h.rows() == rows
        assert (ctx.metrics.num_upserted_rows, ctx.metrics.num_deleted_rows) == (0, 0)


def test_snapshots_keep_the_targets_clustering_and_properties(spark, tmp_path):
    from delta.tables import DeltaTable

    h = CdcHarness(spark, tmp_path, SCHEMA)
    (
        DeltaTable.create(spark)
        .location(h.target_path)
        .addColumns(spark.createDataFrame([], SCHEMA).schema)
        .clusterBy("id")
        .property("quality", "bronze")
        .execute()
    )
    f = h.snapshot_flow(source=_one_snapshot_source(spark, [(1, "a", "x"), (2, "b", "y")]), keys=["id"])
    h.run(f)
    detail = DeltaTable.forPath(spark, h.target_path).detail().first()
    assert h.rows() == [(1, "a", "x"), (2, "b", "y")]
    assert (detail.clusteringColumns, detail.properties.get("quality")) == (["id"], "bronze")


def test_a_target_with_a_column_the_snapshot_lacks_is_merged(spark, tmp_path):
    """A source column dropped: the target keeps it (old rows keep their value, new rows get NULL)."""
    h = CdcHarness(spark, tmp_path, SCHEMA)
    rows = [(1, "a", "x", "kept")]
    spark.createDataFrame(rows, SCHEMA + ", extra STRING").write.format("delta").save(h.target_path)
    f = h.snapshot_flow(source=_one_snapshot_source(spark, [(1, "a2", "x"), (2, "b", "y")]), keys=["id"])
    ctx = h.run(f)
    assert h.rows() == [(1, "a2", "x", "kept"), (2, "b", "y", None)]
    assert (ctx.metrics.num_upserted_rows, ctx.metrics.num_deleted_rows) == (2, 0)


def test_the_last_snapshot_of_earlier_versions_state_table_is_still_read(spark, tmp_path):
    """Storage written before the state moved to snapshot.json: its Delta state table gives the last one."""
    h = CdcHarness(spark, tmp_path, SCHEMA)
    legacy = h.storage.state_path("target", "snapshots")
    spark.createDataFrame(
        [(1, '{"t": "int", "v": 1}', 0), (2, '{"t": "int", "v": 2}', 0)], "n LONG, version STRING, at LONG"
    ).write.format("delta").save(legacy)
    calls: list = []

    def source(latest):
        calls.append(latest)
        return None if latest == 3 else (spark.createDataFrame([(1, "a", "x")], SCHEMA), 3)

    h.run(h.snapshot_flow(source=source, keys=["id"]))
    assert calls == [2, 3]
    assert (tmp_path / "storage" / "system" / "state" / "target" / "snapshot.json").exists()


def _changing_source(spark, snapshots):
    """A function source giving `snapshots` ((rows, schema) per version 1, 2, ...) one per update."""

    def source(latest):
        nxt = 1 if latest is None else latest + 1
        return None if nxt > len(snapshots) else (spark.createDataFrame(*snapshots[nxt - 1]), nxt)

    return source


def _run_reporting(h, f):
    changes: list = []
    ctx = h.context(f)
    ctx.on_schema_change = changes.append
    from localdlt import cdc

    cdc.run_snapshot_flow(ctx)
    return [(c.added, c.widened, c.missing_names) for c in changes if c.added or c.widened or c.missing]


_GROWN = "id INT, qty BIGINT, price DECIMAL(9,2), shelf STRING"


@pytest.mark.parametrize("scd", [1, 2])
def test_the_target_follows_a_snapshot_that_widens_adds_and_drops_columns(spark, tmp_path, scd):
    """Delta's type widening (int -> bigint, decimal(5,2) -> decimal(9,2)) and an added column are applied
    to the target before the snapshot is merged; a column the snapshot no longer has is kept (rows already
    held keep their value) and reported."""
    h = CdcHarness(spark, tmp_path, "id INT, qty INT, price DECIMAL(5,2), gone STRING")
    source = _changing_source(
        spark,
        [
            ([(1, 5, D("1.5"), "g")], "id INT, qty INT, price DECIMAL(5,2), gone STRING"),
            ([(1, 2**40, D("1.5"), "s1"), (2, 7, D("1234.5"), "s2")], _GROWN),
            ([(1, 2**40, D("1.5"), "s1"), (2, 8, D("1234.5"), "s2")], _GROWN),
        ],
    )
    f = h.snapshot_flow(source=source, keys=["id"], stored_as_scd_type=scd)
    first, *later = _run_reporting(h, f)  # versions 1 to 3: the target changes at version 2
    assert first == (
        ["`shelf` string"],
        ["`qty` int -> bigint", "`price` decimal(5,2) -> decimal(9,2)"],
        ["gone"],
    )
    assert later == [([], [], ["gone"])]  # still not written (the executor reports it once)
    target = spark.read.format("delta").load(h.target_path)
    assert [(x.name, x.dataType.simpleString()) for x in target.schema.fields if "__" not in x.name] == [
        ("id", "int"),
        ("qty", "bigint"),
        ("price", "decimal(9,2)"),
        ("gone", "string"),
        ("shelf", "string"),
    ]
    current = target.where("__END_AT IS NULL") if scd == 2 else target
    assert sorted((r.id, r.qty, float(r.price), r.shelf) for r in current.collect()) == [
        (1, 2**40, 1.5, "s1"),
        (2, 8, 1234.5, "s2"),
    ]
    assert {r.id: r.gone for r in current.collect()}[2] is None
    assert _run_reporting(h, f) == []  # no new snapshot: nothing to change


def test_a_narrowed_column_fails_naming_it_and_writes_nothing(spark, tmp_path):
    h = CdcHarness(spark, tmp_path, "id INT, qty BIGINT")
    source = _changing_source(spark, [([(1, 5)], "id INT, qty BIGINT"), ([(1, 6)], "id INT, qty INT")])
    f = h.snapshot_flow(source=source, keys=["id"])
    with pytest.raises(FlowError, match=r"Column 'qty' of 'target' is bigint, but flow 'f' now writes int"):
        h.run(f)  # version 1 applied, version 2 refused
    assert h.rows() == [(1, 5)]
