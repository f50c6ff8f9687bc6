"""The change workload: realistic multi-statement transactions against a seeded DE.tests.

Each transaction is one business event, drawn with fixed weights (`KINDS`):

* new_order        INSERT an order, INSERT its 1-5 lines, UPDATE the order total, UPDATE the reserved
                   quantity of inventory for each product
* stock_movement   UPDATE one inventory row and the stock level of the same product and warehouse
* ship_order       UPDATE a pending/processing order to shipped, INSERT its shipment
* deliver          UPDATE an in-transit shipment to delivered and its order to delivered (the order's
                   large `Notes` is left unchanged: an unchanged TOAST value when it is long)
* return_item      INSERT a return for a line of a delivered order
* cancel_order     UPDATE a pending order to cancelled
* purge_cancelled  DELETE a cancelled order's lines, then the order
* reprice_product  UPDATE the price of a product whose `Description` is long (> 2.5 kB, stored out of
                   line): the TOASTed column is left unchanged
* update_customer  UPDATE a customer's phone and loyalty tier

Transactions commit with `synchronous_commit = off` (a local test source: losing the last few
milliseconds in an OS crash does not matter), which triples the rate on this machine; the server's
`wal_writer_delay` of 10 ms bounds how long a commit waits to be flushed and seen by logical decoding.
Pass `synchronous_commit=True` to measure with durable commits.

"Changes" are row changes (each inserted, updated or deleted row counts one). `--count N` runs
transactions until at least N rows changed; `--rate R --duration S` paces transactions to R row changes
per second and stops after S seconds. Rows are picked from a random key upwards, so the run is
reproducible for the same database content and `seed`.

On request, at the middle of the run: `--add-column TABLE.COL[:TYPE]` adds a column (text by default)
and fills it on a few rows; `--truncate TABLE` (repeatable) truncates tables in one TRUNCATE statement.

Long because: one short function per business transaction of the change workload.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from inventory_bronze.source.errors import WorkloadError
from inventory_bronze.source.schema import TABLES_BY_NAME, table
from inventory_devkit.postgres.server import ServerInfo

#: Transaction kinds and their weights.
KINDS: dict[str, float] = {
    "new_order": 0.28,
    "stock_movement": 0.24,
    "ship_order": 0.12,
    "deliver": 0.10,
    "return_item": 0.04,
    "cancel_order": 0.06,
    "purge_cancelled": 0.05,
    "reprice_product": 0.06,
    "update_customer": 0.05,
}
LONG_TEXT_BYTES = 2500
_TYPES = {
    "text",
    "integer",
    "bigint",
    "numeric(12,2)",
    "timestamptz",
    "timestamp",
    "boolean",
    "jsonb",
    "date",
    "uuid",
}
_CARRIERS = ("DHL", "UPS", "FedEx", "USPS", "PostNL", "DPD", "GLS")
_TIERS = ("bronze", "silver", "gold", "platinum")


def _message(err: BaseException) -> str:
    """The first line of a database error, without its final period."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(".")


@dataclass
class WorkloadReport:
    transactions: Counter[str] = field(default_factory=Counter)
    changes: Counter[tuple[str, str]] = field(
        default_factory=Counter
    )  # (table, insert|update|delete|truncate)
    toast_unchanged_updates: int = 0
    ddl: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total_changes(self) -> int:
        return sum(n for (_, op), n in self.changes.items() if op != "truncate")

    @property
    def total_transactions(self) -> int:
        return sum(self.transactions.values())

    def by_table(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (tab, op), n in sorted(self.changes.items()):
            out.setdefault(tab, {})[op] = n
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "transactions": self.total_transactions,
            "changes": self.total_changes,
            "seconds": round(self.seconds, 3),
            "changes_per_second": round(self.total_changes / self.seconds, 1) if self.seconds else None,
            "by_kind": dict(sorted(self.transactions.items())),
            "by_table": self.by_table(),
            "toast_unchanged_updates": self.toast_unchanged_updates,
            "ddl": list(self.ddl),
        }

    def lines(self) -> list[str]:
        out = [
            f"changes: {self.total_changes:,} row changes in {self.total_transactions:,} transactions, "
            f"{self.seconds:.2f} s ({self.total_changes / self.seconds if self.seconds else 0:,.0f} changes/s)"
        ]
        for tab, ops in self.by_table().items():
            out.append(f"  {tab:<14} " + ", ".join(f"{op} {n:,}" for op, n in ops.items()))
        out.append("  transactions: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.transactions.items())))
        out.append(f"  updates leaving a TOASTed column unchanged: {self.toast_unchanged_updates:,}")
        out.extend(f"  ddl: {d}" for d in self.ddl)
        return out


@dataclass(frozen=True)
class AddColumn:
    table: str
    column: str
    type: str = "text"

    @classmethod
    def parse(cls, spec: str) -> AddColumn:
        """`TABLE.COLUMN` or `TABLE.COLUMN:TYPE` (type one of _TYPES, default text)."""
        target, _, type_ = spec.partition(":")
        tab, dot, col = target.partition(".")
        if not dot or not col:
            raise WorkloadError(
                f"--add-column {spec!r}: expected TABLE.COLUMN[:TYPE], e.g. orders.Gift_Message"
            )
        declared = table(tab)
        if col in declared.column_names:
            raise WorkloadError(f"--add-column {spec!r}: {declared.qualified} already declares column {col}.")
        type_ = (type_ or "text").strip().lower()
        if type_ not in _TYPES:
            raise WorkloadError(
                f"--add-column {spec!r}: type {type_!r} is not one of {', '.join(sorted(_TYPES))}."
            )
        return cls(declared.name, col, type_)


class _Tx:
    """One transaction's statements, counting affected rows per table and operation."""

    def __init__(self, conn: psycopg.Connection, report: WorkloadReport) -> None:
        self.conn = conn
        self.report = report
        self.changes = 0

    def one(self, query: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        return self.conn.execute(query, params).fetchone()

    def write(self, op: str, tab: str, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(query, params)
        rows = cur.fetchall() if cur.description else []
        count = max(cur.rowcount, 0)
        if count:
            self.report.changes[(tab, op)] += count
            self.changes += count
        return rows


class Workload:
    """Runs change transactions on one connection; see the module docstring."""

    def __init__(
        self,
        conn: psycopg.Connection,
        rng: random.Random,
        report: WorkloadReport,
        *,
        synchronous_commit: bool = False,
    ) -> None:
        self.conn = conn
        conn.execute(f"SET synchronous_commit = {'on' if synchronous_commit else 'off'}")
        self.rng = rng
        self.report = report
        self.max_id = self._max_ids()
        kinds = list(KINDS)
        self._kinds = kinds
        self._weights = [KINDS[k] for k in kinds]

    def _max_ids(self) -> dict[str, int]:
        out = {}
        for name in ("customers", "products", "inventory", "orders", "shipments"):
            t = TABLES_BY_NAME[name]
            row = self.conn.execute(
                sql.SQL("SELECT coalesce(max({}), 0) FROM {}").format(
                    sql.Identifier(t.primary_key[0]), t.ident()
                )
            ).fetchone()
            out[name] = int(row[0]) if row else 0
        self.conn.commit()
        empty = [name for name in ("customers", "products", "inventory") if out[name] == 0]
        if empty:
            raise WorkloadError(
                f"Tables {', '.join('tests.' + e for e in empty)} are empty: run `inventory-bronze seed` first."
            )
        return out

    def _start(self, name: str) -> int:
        return self.rng.randint(1, max(self.max_id[name], 1))

    def _pick(self, tx: _Tx, query: str, name: str, *params: Any) -> tuple[Any, ...] | None:
        """First row at or after a random key (query has a `>= %s` on the key), wrapping around once."""
        row = tx.one(query, (self._start(name), *params))
        return row if row is not None else tx.one(query, (0, *params))

    def run_one(self) -> int:
        """One transaction of a random kind; returns the rows it changed."""
        kind = self.rng.choices(self._kinds, self._weights)[0]
        try:
            with self.conn.transaction():
                tx = _Tx(self.conn, self.report)
                getattr(self, f"_{kind}")(tx)
        except psycopg.Error as err:
            raise WorkloadError(
                f"Change transaction '{kind}' failed: {_message(err)}. Re-seed (`inventory-bronze seed`) "
                f"if the tables were changed by hand."
            ) from err
        self.report.transactions[kind] += 1
        return tx.changes

    # --- transaction kinds ----------------------------------------------------------------------------

    def _new_order(self, tx: _Tx) -> None:
        rng = self.rng
        customer = rng.randint(1, self.max_id["customers"])
        notes = None if rng.random() < 0.8 else rng.choice(("leave at the door", "gift wrap", "call first"))
        (order_id,) = tx.write(
            "insert",
            "orders",
            'INSERT INTO tests.orders ("Customer_ID", "Order_Date", "Order_Status", "Total_Amount", "Currency", '
            '"Order_UUID", "Shipping_Address", "Notes", "Created_At") '
            "VALUES (%s, now(), 'pending', 0, 'USD', %s, %s, %s, localtimestamp) RETURNING \"Order_ID\"",
            (
                customer,
                uuid.UUID(int=rng.getrandbits(128), version=4),
                f"{rng.randint(1, 2500)} Main Street",
                notes,
            ),
        )[0]
        self.max_id["orders"] = max(self.max_id["orders"], order_id)
        lines = rng.randint(1, 5)
        products = [rng.randint(1, self.max_id["products"]) for _ in range(lines)]
        quantities = [rng.randint(1, 6) for _ in range(lines)]
        tx.write(
            "insert",
            "order_details",
            'INSERT INTO tests.order_details ("Order_ID", "Product_ID", "Quantity", "Unit_Price", "Discount", '
            '"Line_Total") SELECT %s, p."Product_ID", q.qty, abs(p."Unit_Price"), 0, abs(p."Unit_Price") * q.qty '
            'FROM unnest(%s::int[], %s::int[]) AS q(pid, qty) JOIN tests.products p ON p."Product_ID" = q.pid',
            (order_id, products, quantities),
        )
        tx.write(
            "update",
            "orders",
            'UPDATE tests.orders SET "Total_Amount" = (SELECT coalesce(sum("Line_Total"), 0) '
            'FROM tests.order_details WHERE "Order_ID" = %s), "Updated_At" = now() WHERE "Order_ID" = %s',
            (order_id, order_id),
        )
        tx.write(
            "update",
            "inventory",
            'UPDATE tests.inventory i SET "Quantity_Reserved" = i."Quantity_Reserved" + q.qty, "Updated_At" = now() '
            "FROM (SELECT DISTINCT ON (pid) pid, qty FROM unnest(%s::int[], %s::int[]) AS u(pid, qty)) q "
            'WHERE i."Inventory_ID" = (SELECT min("Inventory_ID") FROM tests.inventory WHERE "Product_ID" = q.pid)',
            (products, quantities),
        )

    def _stock_movement(self, tx: _Tx) -> None:
        row = self._pick(
            tx,
            'SELECT "Inventory_ID", "Product_ID", "Warehouse_ID" FROM tests.inventory WHERE "Inventory_ID" >= %s '
            'ORDER BY "Inventory_ID" LIMIT 1',
            "inventory",
        )
        if row is None:
            return
        inventory_id, product, warehouse = row
        delta = self.rng.randint(-40, 200)
        tx.write(
            "update",
            "inventory",
            'UPDATE tests.inventory SET "Quantity_Available" = greatest("Quantity_Available" + %s, 0), '
            '"Last_Counted_At" = localtimestamp, "Updated_At" = now() WHERE "Inventory_ID" = %s',
            (delta, inventory_id),
        )
        tx.write(
            "update",
            "stock_levels",
            'UPDATE tests.stock_levels SET "Quantity_On_Hand" = greatest("Quantity_On_Hand" + %s, 0), '
            '"Measured_At" = localtimestamp, "Updated_At" = now() WHERE "Product_ID" = %s AND "Warehouse_ID" = %s',
            (delta, product, warehouse),
        )

    def _ship_order(self, tx: _Tx) -> None:
        row = self._pick(
            tx,
            'SELECT "Order_ID" FROM tests.orders WHERE "Order_ID" >= %s AND "Order_Status" IN '
            "('pending', 'processing') ORDER BY \"Order_ID\" LIMIT 1 FOR UPDATE",
            "orders",
        )
        if row is None:
            return
        order_id = row[0]
        tx.write(
            "update",
            "orders",
            'UPDATE tests.orders SET "Order_Status" = \'shipped\', "Updated_At" = now() WHERE "Order_ID" = %s',
            (order_id,),
        )
        carrier = self.rng.randrange(len(_CARRIERS))
        (shipment_id,) = tx.write(
            "insert",
            "shipments",
            'INSERT INTO tests.shipments ("Order_ID", "Warehouse_ID", "Carrier", "Tracking_Number", '
            '"Shipment_Status", "Shipped_At", "Shipping_Cost") SELECT %s, min("Warehouse_ID"), %s, %s, '
            "'in_transit', now(), %s FROM tests.warehouses RETURNING \"Shipment_ID\"",
            (
                order_id,
                _CARRIERS[carrier],
                f"TR{self.rng.randrange(10**10):010d}",
                self.rng.randint(0, 3999) / 100,
            ),
        )[0]
        self.max_id["shipments"] = max(self.max_id["shipments"], shipment_id)

    def _deliver(self, tx: _Tx) -> None:
        row = self._pick(
            tx,
            'SELECT "Shipment_ID", "Order_ID" FROM tests.shipments WHERE "Shipment_ID" >= %s AND '
            '"Shipment_Status" = \'in_transit\' ORDER BY "Shipment_ID" LIMIT 1 FOR UPDATE',
            "shipments",
        )
        if row is None:
            return
        shipment_id, order_id = row
        tx.write(
            "update",
            "shipments",
            'UPDATE tests.shipments SET "Shipment_Status" = \'delivered\', "Delivered_At" = now(), '
            '"Updated_At" = now() WHERE "Shipment_ID" = %s',
            (shipment_id,),
        )
        long_notes = tx.write(
            "update",
            "orders",
            'UPDATE tests.orders SET "Order_Status" = \'delivered\', "Updated_At" = now() WHERE "Order_ID" = %s '
            'RETURNING octet_length("Notes") > %s',
            (order_id, LONG_TEXT_BYTES),
        )
        if long_notes and long_notes[0][0]:
            self.report.toast_unchanged_updates += 1

    def _return_item(self, tx: _Tx) -> None:
        row = self._pick(
            tx,
            'SELECT o."Order_ID", d."Product_ID", abs(d."Unit_Price") FROM tests.orders o JOIN tests.order_details d '
            'ON d."Order_ID" = o."Order_ID" JOIN tests.products p ON p."Product_ID" = d."Product_ID" '
            # a dirty seed's orphaned lines name no product: a return of one would break the foreign key
            'WHERE o."Order_ID" >= %s AND o."Order_Status" = \'delivered\' ORDER BY o."Order_ID" LIMIT 1',
            "orders",
        )
        if row is None:
            return
        order_id, product, price = row
        quantity = self.rng.randint(1, 2)
        tx.write(
            "insert",
            "returns",
            'INSERT INTO tests.returns ("Order_ID", "Product_ID", "Quantity", "Reason", "Return_Status", '
            '"Refund_Amount", "Return_Date") VALUES (%s, %s, %s, %s, \'requested\', %s, current_date)',
            (
                order_id,
                product,
                quantity,
                self.rng.choice(("damaged in transit", "no longer needed")),
                price * quantity,
            ),
        )

    def _cancel_order(self, tx: _Tx) -> None:
        row = self._pick(
            tx,
            'SELECT "Order_ID" FROM tests.orders WHERE "Order_ID" >= %s AND "Order_Status" = \'pending\' '
            'ORDER BY "Order_ID" LIMIT 1 FOR UPDATE',
            "orders",
        )
        if row is None:
            return
        tx.write(
            "update",
            "orders",
            'UPDATE tests.orders SET "Order_Status" = \'cancelled\', "Updated_At" = now() WHERE "Order_ID" = %s',
            (row[0],),
        )

    def _purge_cancelled(self, tx: _Tx) -> None:
        row = self._pick(
            tx,
            'SELECT o."Order_ID" FROM tests.orders o WHERE o."Order_ID" >= %s AND o."Order_Status" = \'cancelled\' '
            'AND NOT EXISTS (SELECT 1 FROM tests.shipments s WHERE s."Order_ID" = o."Order_ID") '
            'AND NOT EXISTS (SELECT 1 FROM tests.returns r WHERE r."Order_ID" = o."Order_ID") '
            'ORDER BY o."Order_ID" LIMIT 1 FOR UPDATE',
            "orders",
        )
        if row is None:
            return
        tx.write(
            "delete", "order_details", 'DELETE FROM tests.order_details WHERE "Order_ID" = %s', (row[0],)
        )
        tx.write("delete", "orders", 'DELETE FROM tests.orders WHERE "Order_ID" = %s', (row[0],))

    def _reprice_product(self, tx: _Tx) -> None:
        row = self._pick(
            tx,
            'SELECT "Product_ID" FROM tests.products WHERE "Product_ID" >= %s AND octet_length("Description") > %s '
            'ORDER BY "Product_ID" LIMIT 1',
            "products",
            LONG_TEXT_BYTES,
        )
        if row is None:
            return
        factor = round(self.rng.uniform(0.9, 1.15), 3)
        tx.write(
            "update",
            "products",
            'UPDATE tests.products SET "Unit_Price" = round(abs("Unit_Price") * %s::numeric, 2), "Updated_At" = now() '
            'WHERE "Product_ID" = %s',
            (factor, row[0]),
        )
        self.report.toast_unchanged_updates += 1

    def _update_customer(self, tx: _Tx) -> None:
        customer = self.rng.randint(1, self.max_id["customers"])
        phone = (
            f"+1-{self.rng.randint(200, 999)}-{self.rng.randint(0, 999):03d}-{self.rng.randint(0, 9999):04d}"
        )
        tx.write(
            "update",
            "customers",
            'UPDATE tests.customers SET "Phone" = %s, "Loyalty_Tier" = %s, "Updated_At" = now() '
            'WHERE "Customer_ID" = %s',
            (phone, self.rng.choice(_TIERS), customer),
        )

    # --- DDL on request -------------------------------------------------------------------------------

    def add_column(self, spec: AddColumn, fill_rows: int = 10) -> None:
        t = TABLES_BY_NAME[spec.table]
        key = sql.Identifier(t.primary_key[0])
        try:
            with self.conn.transaction():
                self.conn.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                        t.ident(), sql.Identifier(spec.column), sql.SQL(spec.type)
                    )
                )
        except psycopg.Error as err:
            raise WorkloadError(
                f"Adding column {spec.column} to {t.qualified} failed: {_message(err)}."
            ) from err
        self.report.ddl.append(f"ALTER TABLE {t.qualified} ADD COLUMN {spec.column} {spec.type}")
        if spec.type == "text":
            with self.conn.transaction():
                tx = _Tx(self.conn, self.report)
                tx.write(
                    "update",
                    spec.table,
                    sql.SQL(
                        "UPDATE {t} SET {c} = 'added ' || {k}::text, \"Updated_At\" = now() "
                        "WHERE {k} IN (SELECT {k} FROM {t} ORDER BY {k} DESC LIMIT %s)"
                    )
                    .format(t=t.ident(), c=sql.Identifier(spec.column), k=key)
                    .as_string(self.conn),
                    (fill_rows,),
                )

    def truncate(self, tables: Sequence[str]) -> None:
        chosen = [table(name) for name in tables]
        try:
            with self.conn.transaction():
                self.conn.execute(
                    sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(t.ident() for t in chosen))
                )
        except psycopg.errors.FeatureNotSupported as err:
            raise WorkloadError(
                f"TRUNCATE {', '.join(t.qualified for t in chosen)} failed: {_message(err)}. Truncate the "
                f"referencing tables in the same run too (repeat --truncate), e.g. order_details with orders."
            ) from err
        for t in chosen:
            self.report.changes[(t.name, "truncate")] += 1
        self.report.ddl.append("TRUNCATE " + ", ".join(t.qualified for t in chosen))


def run_changes(
    info: ServerInfo,
    *,
    count: int | None = None,
    rate: float | None = None,
    duration: float | None = None,
    seed: int | None = None,
    truncate: Sequence[str] = (),
    add_columns: Sequence[str] = (),
    synchronous_commit: bool = False,
    quiet: bool = False,
    echo: Callable[[str], None] = print,
) -> WorkloadReport:
    """Run the change workload: `count` row changes as fast as possible, or `rate` changes/s for
    `duration` seconds. DDL (`add_columns`, `truncate`) runs once, at the middle of the run."""
    if (count is None) == (rate is None):
        raise WorkloadError("Give either --count N, or --rate R with --duration S.")
    if count is not None and count < 0:
        raise WorkloadError(f"--count must be >= 0 (got {count}).")
    if rate is not None and (rate <= 0 or duration is None or duration <= 0):
        raise WorkloadError("--rate needs a positive rate and a positive --duration (seconds).")
    columns = [AddColumn.parse(spec) for spec in add_columns]
    for name in truncate:
        table(name)  # validates the name early
    rng = random.Random(seed)
    report = WorkloadReport()
    started = time.perf_counter()
    with info.connect() as conn:
        work = Workload(conn, rng, report, synchronous_commit=synchronous_commit)
        done = 0
        ddl_done = not (columns or truncate)

        def midpoint() -> None:
            for spec in columns:
                work.add_column(spec)
            if truncate:
                work.truncate(truncate)

        if count is not None:
            while done < count:
                if not ddl_done and done >= count / 2:
                    midpoint()
                    ddl_done = True
                done += work.run_one()
        else:
            assert rate is not None and duration is not None
            next_report = started + 5
            while (now := time.perf_counter()) - started < duration:
                if not ddl_done and now - started >= duration / 2:
                    midpoint()
                    ddl_done = True
                ahead = started + done / rate - now
                if ahead > 0:
                    time.sleep(min(ahead, duration - (now - started)))
                    continue
                done += work.run_one()
                if not quiet and now >= next_report:
                    echo(f"  {now - started:5.0f} s: {done:,} changes ({done / (now - started):,.0f}/s)")
                    next_report += 5
        if not ddl_done:
            midpoint()
    report.seconds = time.perf_counter() - started
    if not quiet:
        for line in report.lines():
            echo(line)
    return report
