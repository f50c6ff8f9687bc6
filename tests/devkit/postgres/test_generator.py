"""The data generator: volumes, determinism, binary COPY encoding, dirty data, loading."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import psycopg
import pyarrow as pa
import pytest

from inventory_bronze.source.errors import GeneratorError
from inventory_bronze.source.schema import TABLES_BY_NAME
from inventory_devkit.postgres import dirty, pgbinary
from inventory_devkit.postgres.generator import SCALE_1, generate_tables, volumes
from inventory_devkit.postgres.load import checksums, row_counts, seed_database

SCALE = 0.002


SEED_VOLUMES = {  # the seed's estimates (section 2.2), 3 261 050 rows
    "products": 10_000,
    "suppliers": 1_000,
    "warehouses": 50,
    "inventory": 100_000,
    "orders": 500_000,
    "order_details": 2_000_000,
    "shipments": 400_000,
    "returns": 50_000,
    "stock_levels": 100_000,
    "customers": 100_000,
}


def test_volumes() -> None:
    assert volumes(1) == SCALE_1
    assert {t: SCALE_1[t] for t in SEED_VOLUMES} == SEED_VOLUMES
    small = volumes(0.0001)
    assert small["warehouses"] == 3 and small["suppliers"] == 1 and small["order_details"] == 200
    with pytest.raises(GeneratorError, match="--scale"):
        volumes(0)


def test_generation_is_deterministic_and_matches_the_schema() -> None:
    first = {g.name: g.data for g in generate_tables(SCALE, seed=11, dirty_rate=0.05)}
    second = {g.name: g.data for g in generate_tables(SCALE, seed=11, dirty_rate=0.05)}
    other = {g.name: g.data for g in generate_tables(SCALE, seed=12, dirty_rate=0.05)}
    assert first.keys() == set(SCALE_1)
    for name, data in first.items():
        assert data.equals(second[name]), name
        assert tuple(data.column_names) == TABLES_BY_NAME[name].column_names
        assert data.num_rows == volumes(SCALE)[name]
    assert not first["orders"].equals(other["orders"])


def test_binary_copy_round_trip(pg_server) -> None:
    data = pa.table(
        {
            "i": pa.array([1, None, -5], pa.int32()),
            "b": pa.array([2**40, 0, -1], pa.int64()),
            "n": pa.array([123.45, -0.01, 999_999_999.99]),
            "ts": pa.array([0, 1_700_000_000_123_456, -1], pa.timestamp("us", tz="UTC")),
            "tn": pa.array([5, None, 1_700_000_000_123_456], pa.timestamp("us")),
            "d": pa.array([0, 19_000, None], pa.date32()),
            "bo": pa.array([True, False, None]),
            "u": pa.array(["b99c3c38b0324d409dec4766ed3af4cb", "b99c3c38-b032-4d40-9dec-4766ed3af4cc", None]),
            "s": pa.array(["héllo", "", None]),
            "j": pa.array(['{"a": 1}', None, "[]"]),
        }
    )
    types = [
        "integer",
        "bigint",
        "numeric(12,2)",
        "timestamptz",
        "timestamp",
        "date",
        "boolean",
        "uuid",
        "text",
        "jsonb",
    ]
    with psycopg.connect(pg_server.conninfo) as conn:
        conn.execute(
            "CREATE TEMP TABLE bin ("
            + ", ".join(f"{n} {t}" for n, t in zip(data.column_names, types, strict=True))
            + ")"
        )
        with conn.cursor().copy("COPY bin FROM STDIN (FORMAT binary)") as copy:
            copy.write(pgbinary.HEADER + pgbinary.encode_rows(data, types) + pgbinary.TRAILER)
        rows = conn.execute("SELECT * FROM bin").fetchall()
    utc = dt.timezone.utc
    assert rows[0] == (
        1,
        2**40,
        Decimal("123.45"),
        dt.datetime(1970, 1, 1, tzinfo=utc),
        dt.datetime(1970, 1, 1, 0, 0, 0, 5),
        dt.date(1970, 1, 1),
        True,
        uuid.UUID("b99c3c38b0324d409dec4766ed3af4cb"),
        "héllo",
        {"a": 1},
    )
    assert rows[1] == (
        None,
        0,
        Decimal("-0.01"),
        dt.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=utc),
        None,
        dt.date(2022, 1, 8),
        False,
        uuid.UUID("b99c3c38b0324d409dec4766ed3af4cc"),
        "",
        None,
    )
    assert rows[2][2] == Decimal("999999999.99") and rows[2][9] == [] and rows[2][8] is None


def test_unsupported_type_is_named() -> None:
    with pytest.raises(GeneratorError, match="'interval'"):
        pgbinary.encode_rows(pa.table({"x": [1]}), ["interval"])


def test_seed_counts_and_determinism(pg_server) -> None:
    report = seed_database(pg_server, scale=SCALE, seed=5, quiet=True)
    assert report.rows == volumes(SCALE) and report.total_rows == sum(volumes(SCALE).values())
    assert all(v == 0 for v in report.dirty.values())
    with pg_server.connect() as conn:
        assert row_counts(conn) == volumes(SCALE)
        first = checksums(conn)
        assert all(v == 0 for v in dirty.count_in_database(conn).values())
    seed_database(pg_server, scale=SCALE, seed=5, quiet=True)  # re-seed: truncates first
    with pg_server.connect() as conn:
        assert row_counts(conn) == volumes(SCALE)
        assert checksums(conn) == first
    seed_database(pg_server, scale=SCALE, seed=6, quiet=True)
    with pg_server.connect() as conn:
        changed = checksums(conn)
    assert changed["orders"] != first["orders"] and changed["customers"] != first["customers"]


def test_seed_output_names_tables_and_rates(pg_server) -> None:
    lines: list[str] = []
    seed_database(pg_server, scale=SCALE, seed=5, dirty_rate=0.02, echo=lines.append)
    text = "\n".join(lines)
    for name in SCALE_1:
        assert name in text
    assert "rows/s" in text and "dirty rows: missing_name" in text


def test_dirty_counts_match_the_tables(pg_server) -> None:
    report = seed_database(pg_server, scale=SCALE, seed=9, dirty_rate=0.05, quiet=True)
    assert set(report.dirty) == set(dirty.KINDS)
    assert all(report.dirty[kind] > 0 for kind in dirty.KINDS), report.dirty
    with pg_server.connect() as conn:
        assert dirty.count_in_database(conn) == report.dirty_by_rule
        # orphans could load because foreign keys are NOT VALID; they still hold for new rows
        valid = conn.execute(
            "SELECT bool_and(convalidated) FROM pg_constraint WHERE contype = 'f' "
            "AND connamespace = 'tests'::regnamespace"
        ).fetchone()
        assert valid == (False,)
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(
                'INSERT INTO tests.order_details ("Order_ID", "Product_ID", "Quantity", "Unit_Price", '
                '"Line_Total") VALUES (1, 999999999, 1, 1, 1)'
            )


def test_clean_seed_can_validate_foreign_keys(pg_server) -> None:
    seed_database(pg_server, scale=SCALE, seed=5, validate_foreign_keys=True, quiet=True)
    with pg_server.connect() as conn:
        row = conn.execute(
            "SELECT bool_and(convalidated), count(*) FROM pg_constraint WHERE contype = 'f' "
            "AND connamespace = 'tests'::regnamespace AND conrelid::regclass::text LIKE 'tests.%'"
        ).fetchone()
    declared = sum(len(t.foreign_keys) for t in TABLES_BY_NAME.values())
    assert row == (True, declared)


def test_a_failed_load_names_the_table_and_stops_the_generator(pg_server) -> None:
    import threading

    from inventory_devkit.postgres.ddl import create_schema

    seed_database(pg_server, scale=SCALE, seed=5, quiet=True)
    with pg_server.connect() as conn:
        conn.execute('ALTER TABLE tests.customers DROP COLUMN "Preferences"')
        conn.commit()
    try:
        with pytest.raises(GeneratorError, match=r"tests\.customers.*Preferences"):
            seed_database(pg_server, scale=SCALE, seed=5, quiet=True)
        assert not any(t.name == "seed-generator" and t.is_alive() for t in threading.enumerate())
    finally:
        create_schema(pg_server, drop=True)


def test_a_table_no_builder_knows_gets_generic_rows_that_copy_encodes() -> None:
    """A table just added to the source schema (docs/add-a-table.md) is generated from its column types:
    keys 1..n, references to rows that exist, every declared column, binary-COPY encodable."""
    import numpy as np

    from inventory_bronze.source.schema import Column, ForeignKey, Table
    from inventory_devkit.postgres.generator import _generic, _World

    table = Table(
        "purchase_orders",
        "PurchaseOrders",
        (
            Column("PO_ID", "integer", nullable=False, identity=True),
            Column("Supplier_ID", "integer"),
            Column("Amount", "numeric(12,2)"),
            Column("Lines", "bigint"),
            Column("Urgent", "boolean"),
            Column("Due", "date"),
            Column("Reference", "uuid"),
            Column("Terms", "jsonb"),
            Column("Note", "text"),
            Column("Created_At", "timestamp", nullable=False),
            Column("Updated_At", "timestamptz", nullable=False, default="now()"),
        ),
        ("PO_ID",),
        "batch",
        foreign_keys=(ForeignKey("Supplier_ID", "suppliers", "Supplier_ID"),),
        seed_rows=40,
    )
    world = _World(seed=3, dirty_rate=0.0, n={**volumes(SCALE), "purchase_orders": 40})
    world.rng = lambda name, stream=0: np.random.default_rng([3, 99, stream])  # type: ignore[method-assign]
    generated = _generic(world, table)
    data = generated.data
    assert tuple(data.column_names) == table.column_names and data.num_rows == 40
    assert data.column("PO_ID").to_pylist() == list(range(1, 41))
    suppliers = volumes(SCALE)["suppliers"]
    assert all(1 <= s <= suppliers for s in data.column("Supplier_ID").to_pylist())
    assert data.column("Updated_At").type.tz == "UTC" and data.column("Created_At").type.tz is None
    encoded = pgbinary.encode_rows(data, [c.type for c in table.columns])
    assert len(encoded) > 40 * len(table.columns)
