"""The declared source schema: declaration rules and the DDL created from it."""

from __future__ import annotations

import pytest

from inventory_bronze.source import schema
from inventory_bronze.source.errors import SchemaError
from inventory_devkit.postgres import ddl

SEED_KEYS = {
    "products": "Product_ID",
    "suppliers": "Supplier_ID",
    "warehouses": "Warehouse_ID",
    "inventory": "Inventory_ID",
    "orders": "Order_ID",
    "order_details": "Order_Detail_ID",
    "shipments": "Shipment_ID",
    "returns": "Return_ID",
    "stock_levels": "Stock_Level_ID",
    "customers": "Customer_ID",
}


def test_the_seeds_ten_tables_with_their_keys() -> None:
    """The seed's tables, each with its key (a table added since is declared alongside them)."""
    assert {name: schema.table(name).primary_key for name in SEED_KEYS} == {
        k: (v,) for k, v in SEED_KEYS.items()
    }


def test_columns_the_seed_code_uses() -> None:
    used = {
        "products": ["Product_ID", "Product_Name", "Category"],
        "inventory": ["Inventory_ID", "Product_ID", "Quantity_Available", "Warehouse_ID"],
        "customers": ["Customer_ID", "Customer_Name", "Email"],
        "orders": ["Order_ID", "Customer_ID", "Order_Date"],
    }
    for name, columns in used.items():
        assert set(columns) <= set(schema.table(name).column_names), name


def test_every_table_has_updated_at_and_realistic_types() -> None:
    types = {c.type for t in schema.TABLES for c in t.columns}
    assert {
        "numeric(12,2)",
        "timestamptz",
        "timestamp",
        "uuid",
        "jsonb",
        "date",
        "boolean",
        "bigint",
    } <= types
    for t in schema.TABLES:
        assert t.column("Updated_At").type == "timestamptz" and not t.column("Updated_At").nullable
    assert set(schema.table("customers").pii_columns) >= {"Customer_Name", "Email", "Phone", "Address"}
    assert set(schema.table("suppliers").pii_columns) >= {"Contact_Name", "Contact_Email", "Phone"}
    assert schema.table("products").large_text_columns == ("Description",)
    assert schema.table("orders").large_text_columns == ("Notes",)


def test_ingestion_patterns_follow_the_seed() -> None:
    by_pattern: dict[str, set[str]] = {}
    for name in SEED_KEYS:
        by_pattern.setdefault(schema.table(name).ingestion, set()).add(name)
    assert by_pattern == {
        "streaming": {"inventory", "orders", "order_details"},
        "batch": {"products", "suppliers", "warehouses"},
        "micro-batch": {"shipments", "returns", "stock_levels"},
        "full-refresh": {"customers"},
    }


def test_lookup_errors_name_the_choices() -> None:
    assert schema.table("tests.Orders").name == "orders"
    with pytest.raises(SchemaError, match="order_details"):
        schema.table("order_lines")
    with pytest.raises(SchemaError, match="case-sensitive"):
        schema.table("orders").column("order_id")


def test_schema_in_the_database(pg_schema) -> None:
    with pg_schema.connect() as conn:
        assert ddl.check_database(conn) == []
        pks = dict(
            conn.execute(
                """SELECT c.relname, string_agg(a.attname, ',') FROM pg_constraint k
                   JOIN pg_class c ON c.oid = k.conrelid
                   JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)
                   WHERE k.contype = 'p' AND c.relnamespace = 'tests'::regnamespace GROUP BY c.relname"""
            ).fetchall()
        )
        fks = conn.execute(
            """SELECT c.relname, a.attname, f.relname FROM pg_constraint k
               JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class f ON f.oid = k.confrelid
               JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
               WHERE k.contype = 'f' AND c.relnamespace = 'tests'::regnamespace"""
        ).fetchall()
        identity = dict(
            conn.execute(
                "SELECT relname, relreplident FROM pg_class WHERE relnamespace = 'tests'::regnamespace "
                "AND relkind = 'r'"
            ).fetchall()
        )
        storage = conn.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = 'tests.products'::regclass "
            "AND attname = 'Description'"
        ).fetchone()
    assert {k: v for k, v in pks.items() if k in SEED_KEYS} == SEED_KEYS
    declared = {(t.name, fk.column, fk.ref_table) for t in schema.TABLES for fk in t.foreign_keys}
    assert declared <= set(fks)
    assert ("order_details", "Order_ID", "orders") in declared
    assert all(identity[name] == "d" for name in SEED_KEYS)  # DEFAULT: the primary key
    assert storage == ("e",)  # EXTERNAL: long descriptions are stored out of line, uncompressed


def test_check_database_reports_drift(pg_schema) -> None:
    with pg_schema.connect() as conn:
        conn.execute('ALTER TABLE tests.warehouses ADD COLUMN "Extra" text')
        conn.execute('ALTER TABLE tests.warehouses ALTER COLUMN "Capacity" TYPE bigint')
        problems = ddl.check_database(conn)
        conn.rollback()
    assert "tests.warehouses.Extra is not declared" in problems
    assert any("Capacity is bigint, declared integer" in p for p in problems)


def test_describe_is_plain_data() -> None:
    import json

    described = json.loads(json.dumps(schema.describe()))
    orders = next(t for t in described if t["table"] == "orders")
    assert orders["primary_key"] == ["Order_ID"] and orders["ingestion"] == "streaming"
    assert {"column": "Customer_ID", "references": "customers.Customer_ID"} in orders["foreign_keys"]
    assert {"name": "Notes", "type": "text", "nullable": True, "pii": False, "large_text": True} in orders[
        "columns"
    ]
