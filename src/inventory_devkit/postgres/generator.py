"""Deterministic, vectorised generation of the ten source tables (numpy + pyarrow, no per-row Python).

`generate_tables(scale, seed, dirty_rate)` yields one `GeneratedTable` per table, in dependency order,
each an Arrow table whose columns are exactly the declared columns of `schema` (same order). The same
(scale, seed, dirty_rate) always gives the same data: every table draws from its own random streams,
seeded from (seed, table) for clean values and (seed, table, "dirty") for the dirty rows, so the clean
data does not depend on the dirty rate's draws... except where a dirty value feeds a derived one
(e.g. a negative unit price gives a negative line total and order total, as it would in the source).

Volumes at scale 1 are the seed's (section 2.2); every table scales linearly, with at least one row
(warehouses at least three). Clean data lies between 2023-01-01 and 2026-06-30 UTC.

`seed.py` loads the tables into PostgreSQL through COPY; see `dirty` for the dirty-data rules.

Long because: one builder per source table (ten), each short and alike.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from inventory_bronze.source.errors import GeneratorError
from inventory_bronze.source.schema import TABLES, TABLES_BY_NAME, Table
from inventory_devkit.postgres import vocab
from inventory_devkit.postgres.dirty import FUTURE_YEARS, ORPHAN_ID_BASE, rules_for

#: Rows per table at scale 1 (the seed's estimates, declared with each table in the source schema).
SCALE_1: dict[str, int] = {t.name: t.seed_rows for t in TABLES}
MIN_ROWS: dict[str, int] = {"warehouses": 3}
MAX_SCALE = 20.0

_US = 1_000_000
_DAY_US = 86_400 * _US
START_US = int(np.datetime64("2023-01-01T00:00:00", "us").astype(np.int64))
END_US = int(np.datetime64("2026-06-30T00:00:00", "us").astype(np.int64))
_FUTURE_START_US = int(np.datetime64(f"{FUTURE_YEARS[0]}-01-01", "us").astype(np.int64))
_FUTURE_END_US = int(np.datetime64(f"{FUTURE_YEARS[1]}-12-31", "us").astype(np.int64))

_TS_TZ = pa.timestamp("us", tz="UTC")
_TS = pa.timestamp("us")


def volumes(scale: float) -> dict[str, int]:
    """Rows per table at `scale`."""
    if not (0 < scale <= MAX_SCALE):
        raise GeneratorError(
            f"--scale must be > 0 and <= {MAX_SCALE} (got {scale}); 1 gives the seed's volumes."
        )
    return {t: max(MIN_ROWS.get(t, 1), int(round(n * scale))) for t, n in SCALE_1.items()}


@dataclass
class GeneratedTable:
    name: str
    data: pa.Table
    dirty: dict[str, int]  # rule key (`table.column:kind`) -> rows broken

    @property
    def rows(self) -> int:
        return self.data.num_rows


@dataclass
class _World:
    """Values later tables derive from (prices, order dates, ...), all indexed by id - 1."""

    seed: int
    dirty_rate: float
    n: dict[str, int]
    product_price: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    inventory_pairs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    order_date: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    order_shipped: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    order_delivered: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    line_order: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    line_product: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    line_total: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    delivered_at: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    lines: GeneratedTable | None = None

    def rng(self, table: str, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, GENERATION_ORDER.index(table), stream])

    def dirty(self, table: str) -> _Dirt:
        return _Dirt(self.rng(table, 1), self.dirty_rate, self.n[table], table)


class _Dirt:
    """Draws which rows break which rule of one table, and counts them."""

    def __init__(self, rng: np.random.Generator, rate: float, n: int, table: str) -> None:
        self.rng = rng
        self.rate = rate
        self.n = n
        self.table = table
        self.counts: dict[str, int] = {r.key: 0 for r in rules_for(table)}

    def mask(self, column: str, kind: str) -> np.ndarray:
        key = f"{self.table}.{column}:{kind}"
        if key not in self.counts:
            raise GeneratorError(f"No dirty rule {key} is declared in dirty.RULES.")
        if self.rate <= 0:
            return np.zeros(self.n, bool)
        chosen = self.rng.random(self.n) < self.rate
        self.counts[key] = int(chosen.sum())
        return chosen


# --- vectorised building blocks -------------------------------------------------------------------------


def _pool(values: tuple[str, ...] | list[str]) -> pa.Array:
    return pa.array(list(values), pa.string())


def _pick(pool: pa.Array, idx: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """pool[idx], NULL where `null` (those rows copy nothing)."""
    return pool.take(pa.array(idx, pa.int32(), mask=null))


def _choose(
    rng: np.random.Generator, pool: pa.Array, n: int, weights: tuple[float, ...] | None = None
) -> pa.Array:
    if weights is None:
        return _pick(pool, rng.integers(0, len(pool), n))
    return _pick(pool, rng.choice(len(pool), n, p=np.asarray(weights) / sum(weights)))


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _num(values: np.ndarray, width: int = 0) -> pa.Array:
    text = pc.cast(pa.array(values), pa.string())
    return pc.utf8_lpad(text, width, padding="0") if width else text


def _null_where(arr: pa.Array, mask: np.ndarray) -> pa.Array:
    if not mask.any():
        return arr
    return pc.if_else(pa.array(mask), pa.scalar(None, arr.type), arr)


def _replace_where(arr: pa.Array, mask: np.ndarray, other: pa.Array) -> pa.Array:
    if not mask.any():
        return arr
    return pc.if_else(pa.array(mask), other, arr)


def _money(cents: np.ndarray) -> pa.Array:
    """Cents as float64: Arrow writes the shortest round-trip text ("123.45"), exact for numeric(p,2)."""
    return pa.array(cents.astype(np.float64) / 100.0, pa.float64())


def _ts(us: np.ndarray, tz: bool = True, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(us.astype(np.int64), _TS_TZ if tz else _TS, mask=mask)


def _date(us: np.ndarray) -> pa.Array:
    return pa.array((us // _DAY_US).astype(np.int32), pa.date32())


def _times(rng: np.random.Generator, n: int, start: int = START_US, end: int = END_US) -> np.ndarray:
    return rng.integers(start, end, n, dtype=np.int64)


def _uuids(rng: np.random.Generator, n: int) -> pa.Array:
    raw = np.frombuffer(rng.bytes(16 * n), np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    hexed = np.frombuffer(binascii.hexlify(raw.tobytes()), dtype="S32")
    return pc.cast(pa.array(hexed, pa.binary(32)), pa.string())


def _texts(rng: np.random.Generator, count: int, min_words: int, max_words: int) -> list[str]:
    words = np.array(vocab.LOREM)
    out = []
    for _ in range(count):
        chosen = words[rng.integers(0, len(words), int(rng.integers(min_words, max_words + 1)))]
        sentence = " ".join(chosen.tolist())
        out.append(sentence[0].upper() + sentence[1:] + ".")
    return out


def _person(rng: np.random.Generator, n: int) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(first, last, "First Last")."""
    first = _choose(rng, _pool(vocab.FIRST_NAMES), n)
    last = _choose(rng, _pool(vocab.LAST_NAMES), n)
    return first, last, _join(first, " ", last)


def _phone(rng: np.random.Generator, n: int) -> pa.Array:
    return _join(
        "+1-",
        _num(rng.integers(200, 1000, n)),
        "-",
        _num(rng.integers(0, 1000, n), 3),
        "-",
        _num(rng.integers(0, 10_000, n), 4),
    )


def _address(rng: np.random.Generator, n: int) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(street address, city, country)."""
    city_idx = rng.integers(0, len(vocab.CITIES), n)
    cities = _pick(_pool([c for c, _ in vocab.CITIES]), city_idx)
    countries = _pick(_pool([k for _, k in vocab.CITIES]), city_idx)
    street = _join(_num(rng.integers(1, 2500, n)), " ", _choose(rng, _pool(vocab.STREETS), n))
    return street, cities, countries


def _email(first: pa.Array, last: pa.Array, ids: np.ndarray, domains: pa.Array) -> pa.Array:
    return _join(pc.utf8_lower(first), ".", pc.utf8_lower(last), _num(ids), "@", domains)


def _malformed(rng: np.random.Generator, first: pa.Array, last: pa.Array, n: int) -> pa.Array:
    """Five ways to break an e-mail address, drawn per row."""
    f, la = pc.utf8_lower(first), pc.utf8_lower(last)
    variants = [
        _join(f, ".", la, ".example.com"),  # no @
        _join(f, ".", la, "@"),  # no domain
        _join("@", la, ".example.com"),  # no local part
        _join(f, " ", la, "@example.com"),  # space
        _join(f, "@@example.com"),  # double @
        _join(f, "@example"),  # no dot in the domain
    ]
    which = rng.integers(0, len(variants), n)
    out = variants[0]
    for k in range(1, len(variants)):
        out = pc.if_else(pa.array(which == k), variants[k], out)
    return out


def _missing(rng: np.random.Generator, arr: pa.Array, mask: np.ndarray) -> pa.Array:
    """NULL, empty or blank names where `mask`."""
    kind = rng.integers(0, 3, len(arr))
    blanks = _pick(_pool(["", "   "]), np.where(kind == 1, 0, 1))
    arr = _replace_where(arr, mask & (kind > 0), blanks)
    return _null_where(arr, mask & (kind == 0))


def _future(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(_FUTURE_START_US, _FUTURE_END_US, n, dtype=np.int64)


def _orphans(rng: np.random.Generator, n: int) -> np.ndarray:
    return ORPHAN_ID_BASE + rng.integers(0, 99_000_000, n)


def _updated(rng: np.random.Generator, created: np.ndarray) -> pa.Array:
    later = created + rng.integers(0, 30 * _DAY_US, len(created))
    return _ts(np.minimum(later, END_US))


def _table(name: str, columns: dict[str, pa.Array]) -> pa.Table:
    declared = TABLES_BY_NAME[name].column_names
    if tuple(columns) != declared:
        raise GeneratorError(
            f"Generator for {name} builds columns {list(columns)}, the schema declares {list(declared)}."
        )
    return pa.table(columns)


# --- tables ---------------------------------------------------------------------------------------------


def _suppliers(w: _World) -> GeneratedTable:
    n, rng, d = w.n["suppliers"], w.rng("suppliers"), w.dirty("suppliers")
    ids = np.arange(1, n + 1)
    first, last, contact = _person(rng, n)
    name = _join(
        _choose(rng, _pool(vocab.LAST_NAMES), n), " ", _choose(rng, _pool(vocab.COMPANY_SUFFIXES), n)
    )
    email = _email(first, last, ids, _choose(rng, _pool(vocab.EMAIL_DOMAINS), n))
    street, city, country = _address(rng, n)
    notes_pool = _pool(_texts(rng, 24, 8, 30) + _texts(rng, 8, 380, 600))
    note_kind = rng.random(n)
    notes = _pick(
        notes_pool,
        np.where(note_kind < 0.9, rng.integers(0, 24, n), rng.integers(24, 32, n)),
        null=note_kind < 0.5,
    )
    created = _times(rng, n, START_US, START_US + 365 * _DAY_US)
    name = _missing(d.rng, name, d.mask("Supplier_Name", "missing_name"))
    bad_email = d.mask("Contact_Email", "malformed_email")
    email = _replace_where(email, bad_email, _malformed(d.rng, first, last, n))
    data = _table(
        "suppliers",
        {
            "Supplier_ID": pa.array(ids, pa.int32()),
            "Supplier_Name": name,
            "Contact_Name": contact,
            "Contact_Email": email,
            "Phone": _phone(rng, n),
            "Address": street,
            "City": city,
            "Country": country,
            "Rating": _money(rng.integers(100, 501, n)),
            "Notes": notes,
            "Created_At": _ts(created, tz=False),
            "Updated_At": _updated(rng, created),
        },
    )
    return GeneratedTable("suppliers", data, d.counts)


def _products(w: _World) -> GeneratedTable:
    n, rng, d = w.n["products"], w.rng("products"), w.dirty("products")
    ids = np.arange(1, n + 1)
    name = _join(
        _choose(rng, _pool(vocab.PRODUCT_ADJECTIVES), n),
        " ",
        _choose(rng, _pool(vocab.PRODUCT_NOUNS), n),
        " ",
        _num(100 + ids % 900),
    )
    price = np.round(np.exp(rng.normal(3.4, 1.0, n)) * 100).astype(np.int64).clip(99, 5_000_000)
    w.product_price = price
    cost = (price * rng.uniform(0.35, 0.8, n)).astype(np.int64)
    descriptions = _pool(_texts(rng, 180, 12, 90) + _texts(rng, 76, 380, 600))  # 76 long (> 2 kB)
    created = _times(rng, n, START_US, END_US - 400 * _DAY_US)
    name = _missing(d.rng, name, d.mask("Product_Name", "missing_name"))
    negative = d.mask("Unit_Price", "negative_price")
    shown_price = np.where(negative, -price, price)
    data = _table(
        "products",
        {
            "Product_ID": pa.array(ids, pa.int32()),
            "Product_Name": name,
            "Category": _choose(rng, _pool(vocab.CATEGORIES), n),
            "Supplier_ID": pa.array(rng.integers(1, w.n["suppliers"] + 1, n), pa.int32()),
            "SKU": _join("SKU-", _num(ids, 8)),
            "Unit_Price": _money(shown_price),
            "Unit_Cost": _money(cost),
            "Is_Active": pa.array(rng.random(n) < 0.95),
            "Attributes": _null_where(_choose(rng, _pool(vocab.attributes_pool()), n), rng.random(n) < 0.1),
            "Description": _choose(rng, descriptions, n),
            "Created_At": _ts(created, tz=False),
            "Updated_At": _updated(rng, created),
        },
    )
    return GeneratedTable("products", data, d.counts)


def _warehouses(w: _World) -> GeneratedTable:
    n, rng = w.n["warehouses"], w.rng("warehouses")
    ids = np.arange(1, n + 1)
    street, city, _ = _address(rng, n)
    _, _, manager = _person(rng, n)
    opened = _times(rng, n, START_US - 3650 * _DAY_US, START_US)
    data = _table(
        "warehouses",
        {
            "Warehouse_ID": pa.array(ids, pa.int32()),
            "Warehouse_Name": _join(city, " DC ", _num(ids, 3)),
            "Location": city,
            "Address": street,
            "Capacity": pa.array(rng.integers(5, 200, n) * 1000, pa.int32()),
            "Manager_Name": manager,
            "Opened_On": _date(opened),
            "Updated_At": _updated(rng, opened + 3650 * _DAY_US),
        },
    )
    return GeneratedTable("warehouses", data, {})


def _customers(w: _World) -> GeneratedTable:
    n, rng, d = w.n["customers"], w.rng("customers"), w.dirty("customers")
    ids = np.arange(1, n + 1)
    first, last, full = _person(rng, n)
    email = _email(first, last, ids, _choose(rng, _pool(vocab.EMAIL_DOMAINS), n))
    street, city, country = _address(rng, n)
    birth = _times(
        rng, n, int(np.datetime64("1940-01-01", "us").astype(np.int64)), START_US - 18 * 365 * _DAY_US
    )
    created = _times(rng, n)
    full = _missing(d.rng, full, d.mask("Customer_Name", "missing_name"))
    email = _replace_where(email, d.mask("Email", "malformed_email"), _malformed(d.rng, first, last, n))
    data = _table(
        "customers",
        {
            "Customer_ID": pa.array(ids, pa.int32()),
            "Customer_Name": full,
            "Email": email,
            "Phone": _null_where(_phone(rng, n), rng.random(n) < 0.15),
            "Address": _join(street, ", ", city),
            "City": city,
            "Country": country,
            "Date_Of_Birth": _null_where(_date(birth), rng.random(n) < 0.3),
            "Loyalty_Tier": _choose(rng, _pool(vocab.LOYALTY_TIERS), n, vocab.LOYALTY_WEIGHTS),
            "Preferences": _null_where(_choose(rng, _pool(vocab.preferences_pool()), n), rng.random(n) < 0.4),
            "Created_At": _ts(created, tz=False),
            "Updated_At": _updated(rng, created),
        },
    )
    return GeneratedTable("customers", data, d.counts)


def _inventory(w: _World) -> GeneratedTable:
    n, rng, d = w.n["inventory"], w.rng("inventory"), w.dirty("inventory")
    n_p, n_w = w.n["products"], w.n["warehouses"]
    grid = n_p * n_w
    codes = np.sort(rng.choice(grid, n, replace=False)) if n <= grid else rng.integers(0, grid, n)
    product, warehouse = codes // n_w + 1, codes % n_w + 1
    available = rng.integers(0, 2000, n)
    reserved = np.minimum(rng.integers(0, 60, n), available)
    w.inventory_pairs = (product, warehouse, available, reserved)
    counted = _times(rng, n, END_US - 180 * _DAY_US, END_US)
    shown_available = np.where(
        d.mask("Quantity_Available", "negative_quantity"), -rng.integers(1, 500, n), available
    )
    orphan = d.mask("Product_ID", "orphaned_reference")
    data = _table(
        "inventory",
        {
            "Inventory_ID": pa.array(np.arange(1, n + 1), pa.int32()),
            "Product_ID": pa.array(np.where(orphan, _orphans(d.rng, n), product), pa.int32()),
            "Warehouse_ID": pa.array(warehouse, pa.int32()),
            "Quantity_Available": pa.array(shown_available, pa.int32()),
            "Quantity_Reserved": pa.array(reserved, pa.int32()),
            "Reorder_Point": pa.array(rng.integers(10, 200, n), pa.int32()),
            "Last_Counted_At": _ts(counted, tz=False, mask=rng.random(n) < 0.05),
            "Updated_At": _updated(rng, counted),
        },
    )
    return GeneratedTable("inventory", data, d.counts)


def _stock_levels(w: _World) -> GeneratedTable:
    n, rng, d = w.n["stock_levels"], w.rng("stock_levels"), w.dirty("stock_levels")
    assert w.inventory_pairs is not None
    product, warehouse, available, reserved = w.inventory_pairs
    idx = np.arange(n) % len(product)  # one stock level per inventory row (the same product and warehouse)
    on_hand = available[idx] + reserved[idx]
    on_hand = np.where(d.mask("Quantity_On_Hand", "negative_quantity"), -rng.integers(1, 500, n), on_hand)
    measured = _times(rng, n, END_US - 30 * _DAY_US, END_US)
    data = _table(
        "stock_levels",
        {
            "Stock_Level_ID": pa.array(np.arange(1, n + 1), pa.int32()),
            "Product_ID": pa.array(product[idx], pa.int32()),
            "Warehouse_ID": pa.array(warehouse[idx], pa.int32()),
            "Quantity_On_Hand": pa.array(on_hand, pa.int32()),
            "Safety_Stock": pa.array(rng.integers(5, 100, n), pa.int32()),
            "Reorder_Quantity": pa.array(rng.integers(50, 500, n), pa.int32()),
            "Measured_At": _ts(measured, tz=False),
            "Updated_At": _updated(rng, measured),
        },
    )
    return GeneratedTable("stock_levels", data, d.counts)


def _orders(w: _World) -> GeneratedTable:
    n, rng, d = w.n["orders"], w.rng("orders"), w.dirty("orders")
    w.lines = _order_lines(w)  # order totals are the sums of their lines
    n_ship = min(w.n["shipments"], n)
    shipped = np.zeros(n, bool)
    shipped[rng.permutation(n)[:n_ship]] = True
    delivered = shipped & (rng.random(n) < 0.85)
    open_status = _choose(rng, _pool(["pending", "processing", "cancelled"]), n, (0.3, 0.4, 0.3))
    status = pc.if_else(
        pa.array(shipped), pc.if_else(pa.array(delivered), "delivered", "shipped"), open_status
    ).cast(pa.string())
    date = _times(rng, n, START_US, END_US - 30 * _DAY_US)
    w.order_date, w.order_shipped, w.order_delivered = date, shipped, delivered
    total = np.bincount(w.line_order - 1, weights=w.line_total.astype(np.float64), minlength=n).round()
    street, city, _ = _address(rng, n)
    notes_pool = _pool(_texts(rng, 48, 4, 25) + _texts(rng, 16, 380, 600))
    note_kind = rng.random(n)
    notes = _pick(
        notes_pool,
        np.where(note_kind < 0.99, rng.integers(0, 48, n), rng.integers(48, 64, n)),
        null=note_kind < 0.85,
    )
    shown_date = np.where(d.mask("Order_Date", "future_date"), _future(d.rng, n), date)
    orphan = d.mask("Customer_ID", "orphaned_reference")
    customer = np.where(orphan, _orphans(d.rng, n), rng.integers(1, w.n["customers"] + 1, n))
    data = _table(
        "orders",
        {
            "Order_ID": pa.array(np.arange(1, n + 1), pa.int32()),
            "Customer_ID": pa.array(customer, pa.int32()),
            "Order_Date": _ts(shown_date),
            "Order_Status": status,
            "Total_Amount": _money(total.astype(np.int64)),
            "Currency": _choose(rng, _pool(vocab.CURRENCIES), n, vocab.CURRENCY_WEIGHTS),
            "Order_UUID": _uuids(rng, n),
            "Shipping_Address": _join(street, ", ", city),
            "Notes": notes,
            "Created_At": _ts(date, tz=False),
            "Updated_At": _updated(rng, date),
        },
    )
    return GeneratedTable("orders", data, d.counts)


def _order_lines(w: _World) -> GeneratedTable:
    n, n_o, rng, d = w.n["order_details"], w.n["orders"], w.rng("order_details"), w.dirty("order_details")
    # every order gets at least one line when there are enough lines; lines are sorted by order
    if n >= n_o:
        order = np.concatenate([np.arange(1, n_o + 1), rng.integers(1, n_o + 1, n - n_o)])
    else:
        order = rng.integers(1, n_o + 1, n)
    order.sort()
    w.line_order, w.line_product = order, rng.integers(1, w.n["products"] + 1, n)
    quantity = np.minimum(rng.geometric(0.45, n), 20)
    price = w.product_price[w.line_product - 1]
    discount = np.array([0, 0, 0, 0, 5, 10, 15])[rng.integers(0, 7, n)]
    quantity = np.where(d.mask("Quantity", "negative_quantity"), -quantity, quantity)
    price = np.where(d.mask("Unit_Price", "negative_price"), -price, price)
    orphan = d.mask("Product_ID", "orphaned_reference")
    product = np.where(orphan, _orphans(d.rng, n), w.line_product)
    total = (quantity * price * (100 - discount)) // 100
    w.line_total = total
    data = _table(
        "order_details",
        {
            "Order_Detail_ID": pa.array(np.arange(1, n + 1), pa.int64()),
            "Order_ID": pa.array(w.line_order, pa.int32()),
            "Product_ID": pa.array(product, pa.int32()),
            "Quantity": pa.array(quantity, pa.int32()),
            "Unit_Price": _money(price),
            "Discount": pa.array(discount.astype(np.float64)),
            "Line_Total": _money(total),
            "Updated_At": _ts(np.zeros(n, np.int64)),  # set from the order's date below
        },
    )
    return GeneratedTable("order_details", data, d.counts)


def _order_details(w: _World) -> GeneratedTable:
    lines = w.lines
    assert lines is not None, "orders are generated before order_details"
    updated = np.minimum(w.order_date[w.line_order - 1] + _DAY_US, END_US)
    data = lines.data.set_column(lines.data.num_columns - 1, "Updated_At", _ts(updated))
    return GeneratedTable("order_details", data, lines.dirty)


def _shipments(w: _World) -> GeneratedTable:
    rng, d = w.rng("shipments"), w.dirty("shipments")
    order_idx = np.flatnonzero(w.order_shipped)
    n = len(order_idx)
    shipped_at = w.order_date[order_idx] + rng.integers(2 * 3600 * _US, 3 * _DAY_US, n)
    delivered = w.order_delivered[order_idx]
    delivered_at = shipped_at + rng.integers(_DAY_US, 7 * _DAY_US, n)
    w.delivered_at = np.zeros(len(w.order_date), np.int64)
    w.delivered_at[order_idx[delivered]] = delivered_at[delivered]
    carrier_idx = rng.integers(0, len(vocab.CARRIERS), n)
    tracking = _join(_pick(_pool(vocab.CARRIER_PREFIX), carrier_idx), _num(rng.integers(0, 10**10, n), 10))
    status = pc.if_else(pa.array(delivered), "delivered", "in_transit").cast(pa.string())
    shown_shipped = np.where(d.mask("Shipped_At", "future_date"), _future(d.rng, n), shipped_at)
    data = _table(
        "shipments",
        {
            "Shipment_ID": pa.array(np.arange(1, n + 1), pa.int32()),
            "Order_ID": pa.array(order_idx + 1, pa.int32()),
            "Warehouse_ID": pa.array(rng.integers(1, w.n["warehouses"] + 1, n), pa.int32()),
            "Carrier": _pick(_pool(vocab.CARRIERS), carrier_idx),
            "Tracking_Number": _null_where(tracking, rng.random(n) < 0.02),
            "Shipment_Status": status,
            "Shipped_At": _ts(shown_shipped),
            "Delivered_At": _ts(delivered_at, mask=~delivered),
            "Shipping_Cost": _money(rng.integers(0, 4000, n)),
            "Updated_At": _ts(np.where(delivered, delivered_at, shipped_at)),
        },
    )
    return GeneratedTable("shipments", data, d.counts)


def _returns(w: _World) -> GeneratedTable:
    n, rng, d = w.n["returns"], w.rng("returns"), w.dirty("returns")
    candidates = np.flatnonzero(w.order_delivered)
    if len(candidates) == 0:
        candidates = np.arange(len(w.order_date))
    order_idx = np.sort(rng.choice(candidates, n))
    first_line = np.searchsorted(w.line_order, order_idx + 1)
    has_line = (first_line < len(w.line_order)) & (
        w.line_order[np.minimum(first_line, len(w.line_order) - 1)] == order_idx + 1
    )
    product = np.where(has_line, w.line_product[np.minimum(first_line, len(w.line_product) - 1)], 1)
    quantity = rng.integers(1, 4, n)
    base = np.where(
        w.delivered_at[order_idx] > 0, w.delivered_at[order_idx], w.order_date[order_idx] + 5 * _DAY_US
    )
    returned = np.minimum(base + rng.integers(_DAY_US, 14 * _DAY_US, n), END_US)
    refund = quantity * w.product_price[product - 1]
    status = _choose(rng, _pool(vocab.RETURN_STATUSES), n, (0.15, 0.2, 0.2, 0.4, 0.05))
    quantity = np.where(d.mask("Quantity", "negative_quantity"), -quantity, quantity)
    orphan = d.mask("Order_ID", "orphaned_reference")
    order = np.where(orphan, _orphans(d.rng, n), order_idx + 1)
    data = _table(
        "returns",
        {
            "Return_ID": pa.array(np.arange(1, n + 1), pa.int32()),
            "Order_ID": pa.array(order, pa.int32()),
            "Product_ID": pa.array(product, pa.int32()),
            "Quantity": pa.array(quantity, pa.int32()),
            "Reason": _null_where(_choose(rng, _pool(vocab.RETURN_REASONS), n), rng.random(n) < 0.1),
            "Return_Status": status,
            "Refund_Amount": _money(refund),
            "Return_Date": _date(returned),
            "Updated_At": _ts(returned),
        },
    )
    return GeneratedTable("returns", data, d.counts)


def _generic(w: _World, table: Table) -> GeneratedTable:
    """Plausible rows of a declared table that no builder above knows, from its column types: keys
    1..n, references to existing rows of the referenced table, the other values drawn at random."""
    n, rng = w.n[table.name], w.rng(table.name)
    ids = np.arange(1, n + 1)
    references = {fk.column: fk.ref_table for fk in table.foreign_keys}
    created = _times(rng, n, START_US, END_US - 30 * _DAY_US)
    columns: dict[str, pa.Array] = {}
    for c in table.columns:
        kind = c.type.lower()
        if c.name in table.primary_key:
            values = pa.array(ids, pa.int64() if kind == "bigint" else pa.int32())
        elif c.name in references:
            values = pa.array(rng.integers(1, w.n[references[c.name]] + 1, n), pa.int32())
        elif c.name == "Updated_At":
            values = _updated(rng, created)
        elif kind in ("integer", "smallint", "bigint"):
            values = pa.array(rng.integers(0, 1_000, n), pa.int64() if kind == "bigint" else pa.int32())
        elif kind.startswith("numeric"):
            values = _money(rng.integers(0, 100_000, n))
        elif kind == "boolean":
            values = pa.array(rng.random(n) < 0.5)
        elif kind == "date":
            values = _date(created)
        elif kind in ("timestamp", "timestamptz"):
            values = _ts(created, tz=kind == "timestamptz")
        elif kind == "uuid":
            values = _uuids(rng, n)
        elif kind == "jsonb":
            values = _join('{"n": ', _num(ids), "}")
        else:
            values = _join(f"{c.name} ", _num(ids))
        columns[c.name] = values
    return GeneratedTable(table.name, pa.table(columns), {})


_BUILDERS = {
    "suppliers": _suppliers,
    "products": _products,
    "warehouses": _warehouses,
    "customers": _customers,
    "inventory": _inventory,
    "stock_levels": _stock_levels,
    "orders": _orders,
    "order_details": _order_details,
    "shipments": _shipments,
    "returns": _returns,
}
#: Generation order: parents before children (the builders' order), then the tables no builder knows,
#: which get generic rows (a table just added to the source schema: docs/add-a-table.md)
GENERATION_ORDER: tuple[str, ...] = (*_BUILDERS, *(t.name for t in TABLES if t.name not in _BUILDERS))
assert set(_BUILDERS) <= set(GENERATION_ORDER) == {t.name for t in TABLES}


def generate_tables(scale: float = 1.0, seed: int = 42, dirty_rate: float = 0.0) -> Iterator[GeneratedTable]:
    """Every table, parents first; deterministic for (scale, seed, dirty_rate)."""
    if not (0.0 <= dirty_rate <= 0.5):
        raise GeneratorError(f"--dirty-rate must be between 0 and 0.5 (got {dirty_rate}).")
    if seed < 0:
        raise GeneratorError(f"--seed must be >= 0 (got {seed}).")
    world = _World(seed=seed, dirty_rate=dirty_rate, n=volumes(scale))
    for name in GENERATION_ORDER:
        builder = _BUILDERS.get(name)
        yield builder(world) if builder else _generic(world, TABLES_BY_NAME[name])
