"""The kinds of dirty data the generator mixes in, where, and how to find them again with SQL.

Each rule breaks one column of one table in one way. With `--dirty-rate R`, each rule breaks about a
fraction R of its table's rows (independently of the other rules, so one row can break two rules in
different columns). Clean rows never match a rule's predicate, so counting the predicate in the database
gives back exactly what the generator reports.

Orphaned references use ids from 900,000,000 up, far above any key the seed or the change workload
creates. They can exist because the seed adds foreign keys NOT VALID after its bulk load (see schema).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from psycopg import sql

from inventory_bronze.source.schema import TABLES_BY_NAME

if TYPE_CHECKING:
    import psycopg

DirtyKind = Literal[
    "missing_name",
    "malformed_email",
    "negative_quantity",
    "negative_price",
    "future_date",
    "orphaned_reference",
]
KINDS: tuple[DirtyKind, ...] = (
    "missing_name",
    "malformed_email",
    "negative_quantity",
    "negative_price",
    "future_date",
    "orphaned_reference",
)

ORPHAN_ID_BASE = 900_000_000
#: Dirty future dates fall in these years (clean data ends in mid-2026).
FUTURE_YEARS = (2090, 2099)


@dataclass(frozen=True)
class DirtyRule:
    table: str
    column: str
    kind: DirtyKind

    @property
    def key(self) -> str:
        return f"{self.table}.{self.column}:{self.kind}"

    def predicate(self) -> sql.Composable:
        """SQL condition (on alias `t`) true exactly for rows that break this rule."""
        col = sql.Identifier("t", self.column)
        if self.kind == "missing_name":
            return sql.SQL("({c} IS NULL OR btrim({c}) = '')").format(c=col)
        if self.kind == "malformed_email":
            return sql.SQL(
                "({c} IS NOT NULL AND {c} !~ '^[^@[:space:]]+@[^@[:space:]]+\\.[^@[:space:]]+$')"
            ).format(c=col)
        if self.kind in ("negative_quantity", "negative_price"):
            return sql.SQL("{c} < 0").format(c=col)
        if self.kind == "future_date":
            return sql.SQL("{c} > now()").format(c=col)
        fk = next(fk for fk in TABLES_BY_NAME[self.table].foreign_keys if fk.column == self.column)
        target = TABLES_BY_NAME[fk.ref_table]
        return sql.SQL("({c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {r} x WHERE x.{rc} = {c}))").format(
            c=col, r=target.ident(), rc=sql.Identifier(fk.ref_column)
        )


RULES: tuple[DirtyRule, ...] = (
    DirtyRule("products", "Product_Name", "missing_name"),
    DirtyRule("suppliers", "Supplier_Name", "missing_name"),
    DirtyRule("customers", "Customer_Name", "missing_name"),
    DirtyRule("customers", "Email", "malformed_email"),
    DirtyRule("suppliers", "Contact_Email", "malformed_email"),
    DirtyRule("products", "Unit_Price", "negative_price"),
    DirtyRule("order_details", "Unit_Price", "negative_price"),
    DirtyRule("inventory", "Quantity_Available", "negative_quantity"),
    DirtyRule("order_details", "Quantity", "negative_quantity"),
    DirtyRule("returns", "Quantity", "negative_quantity"),
    DirtyRule("stock_levels", "Quantity_On_Hand", "negative_quantity"),
    DirtyRule("orders", "Order_Date", "future_date"),
    DirtyRule("shipments", "Shipped_At", "future_date"),
    DirtyRule("orders", "Customer_ID", "orphaned_reference"),
    DirtyRule("order_details", "Product_ID", "orphaned_reference"),
    DirtyRule("inventory", "Product_ID", "orphaned_reference"),
    DirtyRule("returns", "Order_ID", "orphaned_reference"),
)


def rules_for(table: str) -> tuple[DirtyRule, ...]:
    return tuple(r for r in RULES if r.table == table)


def by_kind(counts: dict[str, int]) -> dict[str, int]:
    """Sum per-rule counts (keys `table.column:kind`) per kind; every kind present, zeros included."""
    totals = dict.fromkeys(KINDS, 0)
    for key, value in counts.items():
        totals[key.rsplit(":", 1)[1]] += value
    return totals


def count_in_database(conn: psycopg.Connection) -> dict[str, int]:
    """Rows breaking each rule, as found in the database now (keys `table.column:kind`)."""
    out: dict[str, int] = {}
    for rule in RULES:
        query = sql.SQL("SELECT count(*) FROM {} t WHERE {}").format(
            TABLES_BY_NAME[rule.table].ident(), rule.predicate()
        )
        row = conn.execute(query).fetchone()
        out[rule.key] = int(row[0]) if row else 0
    return out
