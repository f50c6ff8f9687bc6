"""The change workload against a freshly seeded DE.tests."""

from __future__ import annotations

import pytest

from inventory_bronze.source.errors import WorkloadError
from inventory_devkit.postgres import ddl
from inventory_devkit.postgres.load import row_counts, seed_database
from inventory_devkit.postgres.workload import KINDS, AddColumn, run_changes


def _toast_chunks(info) -> int:
    import psycopg

    with psycopg.connect(info.admin_conninfo(), autocommit=True) as conn:
        toast = conn.execute(
            "SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'tests.products'::regclass"
        ).fetchone()
        assert toast is not None
        row = conn.execute(f"SELECT count(*) FROM {toast[0]}").fetchone()
    return int(row[0]) if row else 0


def test_counts_match_the_tables(pg_seeded) -> None:
    with pg_seeded.connect() as conn:
        before = row_counts(conn)
    report = run_changes(pg_seeded, count=600, seed=3, quiet=True)
    assert report.total_changes >= 600
    assert set(report.transactions) == set(KINDS)  # every kind of business event ran
    with pg_seeded.connect() as conn:
        after = row_counts(conn)
    for name in before:
        ops = report.by_table().get(name, {})
        assert after[name] == before[name] + ops.get("insert", 0) - ops.get("delete", 0), name
    assert report.by_table()["order_details"]["delete"] > 0  # cancelled orders purged with their lines
    assert report.by_table()["stock_levels"]["update"] > 0


def test_same_seed_same_changes(pg_server) -> None:
    quantities = (
        'SELECT md5(string_agg(concat_ws(\',\', "Inventory_ID", "Quantity_Available", "Quantity_Reserved"), \';\' '
        'ORDER BY "Inventory_ID")) FROM tests.inventory'
    )
    results = []
    for _ in range(2):
        seed_database(pg_server, scale=0.002, seed=7, quiet=True)
        report = run_changes(pg_server, count=150, seed=21, quiet=True)
        with pg_server.connect() as conn:
            results.append((report.by_table(), conn.execute(quantities).fetchone()))
    assert results[0] == results[1]


def test_updates_leave_toasted_descriptions_in_place(pg_seeded) -> None:
    query = (
        'SELECT "Product_ID", md5("Description"), "Unit_Price" FROM tests.products '
        'WHERE octet_length("Description") > 2500 ORDER BY 1'
    )
    with pg_seeded.connect() as conn:
        before = {r[0]: r[1:] for r in conn.execute(query).fetchall()}
    chunks = _toast_chunks(pg_seeded)
    assert before and chunks > 0  # long descriptions are stored out of line
    report = run_changes(pg_seeded, count=400, seed=5, quiet=True)
    assert report.toast_unchanged_updates > 0 and report.by_table()["products"]["update"] > 0
    with pg_seeded.connect() as conn:
        after = {r[0]: r[1:] for r in conn.execute(query).fetchall()}
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}
    assert any(after[k][1] != before[k][1] for k in before)  # prices did change
    assert _toast_chunks(pg_seeded) == chunks  # no TOAST value was rewritten


def test_add_column_and_truncate_mid_run(pg_seeded) -> None:
    report = run_changes(
        pg_seeded, count=300, seed=8, add_columns=["orders.Gift_Message"], truncate=["returns"], quiet=True
    )
    assert report.ddl == ["ALTER TABLE tests.orders ADD COLUMN Gift_Message text", "TRUNCATE tests.returns"]
    assert report.by_table()["returns"]["truncate"] == 1
    with pg_seeded.connect() as conn:
        filled = conn.execute('SELECT count("Gift_Message") FROM tests.orders').fetchone()
        returns = conn.execute("SELECT count(*) FROM tests.returns").fetchone()
        problems = ddl.check_database(conn)
    assert filled == (10,)
    assert returns is not None and returns[0] <= report.by_table()["returns"].get("insert", 0)
    assert problems == ["tests.orders.Gift_Message is not declared"]
    lines: list[str] = []  # a re-seed keeps the added column (NULL) and says so
    seed_database(pg_seeded, scale=0.002, seed=7, echo=lines.append)
    assert "  note: tests.orders.Gift_Message is not declared" in lines


def test_truncating_a_referenced_table_alone_is_refused(pg_seeded) -> None:
    with pytest.raises(WorkloadError, match="order_details"):
        run_changes(pg_seeded, count=10, seed=1, truncate=["orders"], quiet=True)
    report = run_changes(
        pg_seeded, count=0, truncate=["orders", "order_details", "shipments", "returns"], quiet=True
    )
    assert report.ddl == ["TRUNCATE tests.orders, tests.order_details, tests.shipments, tests.returns"]


def test_rate_mode_paces_and_stops(pg_seeded) -> None:
    report = run_changes(pg_seeded, rate=200, duration=2.0, seed=4, quiet=True)
    assert 1.9 <= report.seconds <= 4.0
    assert 250 <= report.total_changes <= 480


def test_arguments_are_checked(pg_seeded) -> None:
    with pytest.raises(WorkloadError, match="--count"):
        run_changes(pg_seeded, quiet=True)
    with pytest.raises(WorkloadError, match="--duration"):
        run_changes(pg_seeded, rate=10, quiet=True)
    with pytest.raises(WorkloadError, match="TABLE.COLUMN"):
        AddColumn.parse("orders")
    with pytest.raises(WorkloadError, match="already declares"):
        AddColumn.parse("orders.Notes")
    with pytest.raises(WorkloadError, match="type 'money'"):
        AddColumn.parse("orders.X:money")
    assert AddColumn.parse("Orders.Points:integer") == AddColumn("orders", "Points", "integer")


def test_empty_tables_ask_for_a_seed(pg_schema) -> None:
    with pytest.raises(WorkloadError, match="inventory-bronze seed"):
        run_changes(pg_schema, count=5, quiet=True)


def test_a_dirty_seed_does_not_break_the_workload(pg_server) -> None:
    """Orphaned references of a dirty seed (lines naming no product) are never copied into new rows: a
    return of such a line would violate the returns' foreign key."""
    seed_database(pg_server, scale=0.002, seed=5, dirty_rate=0.5, quiet=True)
    with pg_server.connect() as conn:
        orphans = conn.execute(
            "SELECT count(*) FROM tests.order_details d WHERE NOT EXISTS "
            '(SELECT 1 FROM tests.products p WHERE p."Product_ID" = d."Product_ID")'
        ).fetchone()
    assert orphans is not None and orphans[0] > 0  # the seed has what the workload must step around
    report = run_changes(pg_server, count=3000, seed=11, quiet=True)
    assert report.transactions["return_item"] > 0
    assert report.by_table()["returns"]["insert"] > 0
