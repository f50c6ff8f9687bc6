"""Reconciliation after an update: per table, the source's keys against bronze's and quarantine's.

A source key must be in bronze or in quarantine (nothing lost); a bronze key must be in the source
(nothing kept that the source deleted); no key twice (nothing duplicated). The key checksums (count and
sum of the keys) of source and bronze+quarantine make the comparison cheap to record and audit.

Long because: the key comparison and the row-for-row comparison share their readers, PII decryption and
report format.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg import sql

from inventory_bronze.bronze import undeclared_columns
from inventory_bronze.config import BronzeConfig, target_name
from inventory_bronze.errors import ConfigError
from inventory_bronze.source.schema import table as declared


@dataclass(frozen=True)
class Reconciliation:
    table: str
    source_rows: int
    bronze_rows: int
    quarantined_only: int  # source keys held back by quarantine, not in bronze
    missing: int  # source keys neither in bronze nor in quarantine
    extra: int  # bronze keys the source no longer has
    duplicates: int  # keys twice in bronze
    source_checksum: int
    bronze_checksum: int

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.extra == 0 and self.duplicates == 0

    @property
    def status(self) -> str:
        return "MATCH" if self.ok else "MISMATCH"


#: dataset name -> its DataFrame, or None when there is no such table (on Databricks:
#: `audit.store.Location(catalog=..., schema=...).read`, the published tables)
TableReader = Callable[[str], Any]


def table_paths(storage: Path) -> dict[str, Path]:
    """Dataset name -> Delta folder, over every pipeline under `storage`."""
    return {p.name: p for p in Path(storage).glob("*/tables/*") if (p / "_delta_log").is_dir()}


def local_tables(spark: Any, storage: Path) -> TableReader:
    """The datasets of the local runs under `storage`."""
    paths = table_paths(storage)
    return lambda name: spark.read.format("delta").load(str(paths[name])) if name in paths else None


def _current(df: Any) -> Any:
    return df.where("__END_AT IS NULL") if "__END_AT" in df.columns else df


@dataclass(frozen=True)
class _Keys:
    source: list[Any]
    bronze: list[Any]
    quarantined: set[Any]

    @property
    def missing(self) -> set[Any]:
        return set(self.source) - set(self.bronze) - self.quarantined

    @property
    def extra(self) -> set[Any]:
        return set(self.bronze) - set(self.source)

    @property
    def duplicated(self) -> dict[Any, int]:
        """Keys in bronze more than once -> how many rows too many."""
        return {k: n - 1 for k, n in Counter(self.bronze).items() if n > 1}


def _keys(read: TableReader, conn: Any, table: str, schema: str | None) -> _Keys:
    key = declared(table).primary_key[0]
    source_table = sql.Identifier(schema, table) if schema else declared(table).ident()
    query = sql.SQL("SELECT {} FROM {}").format(sql.Identifier(key), source_table)
    source = [r[0] for r in conn.execute(query).fetchall()]
    target = read(target_name(table))
    if target is None:
        raise ConfigError(f"No bronze table {target_name(table)} to reconcile: run its pipeline first.")
    bz = [r[0] for r in _current(target).select(key).collect()]
    quarantine = read(f"bz_{table}_quarantine")
    quarantined = {r[0] for r in quarantine.select(key).collect()} if quarantine is not None else set()
    return _Keys(source, bz, quarantined)


def reconcile_tables(
    spark: Any,
    read: TableReader,
    conn: Any,
    config: BronzeConfig,
    tables: list[str] | None = None,
    settle: Callable[[], None] | None = None,
    source_schema: str | None = None,
) -> list[Reconciliation]:
    """Source keys (tables of `source_schema`, default the declared one) against bronze's and quarantine's,
    per table. With `settle` (e.g. a wait longer than the continuous pipeline's lag), the tables that
    differ are compared again after it and only differences found both times count: changes in flight
    when the first comparison ran are not reported as lost."""
    names = tables or config.table_names
    first = {table: _keys(read, conn, table, source_schema) for table in names}
    differing = [t for t, k in first.items() if k.missing or k.extra or k.duplicated]
    again = {}
    if settle is not None and differing:
        settle()
        again = {table: _keys(read, conn, table, source_schema) for table in differing}
    out = []
    for table in names:
        keys = again.get(table, first[table])
        missing, extra, duplicated = keys.missing, keys.extra, keys.duplicated
        if table in again:  # only what differed before and after the settling
            missing &= first[table].missing
            extra &= first[table].extra
            duplicated = {k: n for k, n in duplicated.items() if k in first[table].duplicated}
        source_set, bz_set = set(keys.source), set(keys.bronze)
        held_back = (source_set - bz_set) & keys.quarantined
        out.append(
            Reconciliation(
                table=table,
                source_rows=len(keys.source),
                bronze_rows=len(keys.bronze),
                quarantined_only=len(held_back),
                missing=len(missing),
                extra=len(extra),
                duplicates=sum(duplicated.values()),
                source_checksum=sum(source_set),
                bronze_checksum=sum(bz_set) + sum(held_back),
            )
        )
    return out


def reconcile(
    spark: Any, storage: Path, conn: Any, config: BronzeConfig, tables: list[str] | None = None
) -> list[Reconciliation]:
    """`reconcile_tables` over the local runs under `storage` (what `run` and `demo` do after updating)."""
    return reconcile_tables(spark, local_tables(spark, storage), conn, config, tables)


def format_table(rows: list[Reconciliation]) -> str:
    head = f"{'table':<16}{'source':>10}{'bronze':>10}{'quarant.':>10}{'missing':>9}{'extra':>7}{'dup':>5}  status"
    lines = [head]
    for r in rows:
        lines.append(
            f"{r.table:<16}{r.source_rows:>10,}{r.bronze_rows:>10,}{r.quarantined_only:>10,}"
            f"{r.missing:>9,}{r.extra:>7,}{r.duplicates:>5,}  {r.status}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- row for row
@dataclass(frozen=True)
class RowComparison:
    """Bronze (current rows) against the source, every column, PII decrypted."""

    table: str
    source_rows: int
    matched: int  # source rows whose bronze row has the same values
    quarantined: int  # source rows held back: their latest quarantine row has the source's values
    lost: int  # source rows neither in bronze nor (with these values) in quarantine
    duplicated: int  # keys more than once among bronze's current rows
    wrong: int  # keys in bronze with other values than the source (and not explained by quarantine)
    extra: int  # bronze keys the source no longer has (a lost delete)
    examples: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.wrong == 0 and self.extra == 0


def _normal(value: Any, kind: str) -> Any:
    """One comparable form of a value from psycopg or Spark (`kind`: the declared PostgreSQL type)."""
    import json
    import math
    from decimal import Decimal

    if value is None:
        return None
    if kind == "jsonb":
        return json.dumps(json.loads(value) if isinstance(value, str) else value, sort_keys=True)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, Decimal):
        return value.normalize() if value.is_finite() else str(value)
    if isinstance(value, (int, float, bool, dt.date, dt.datetime)):
        return value
    return str(value)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _as_text(value: Any) -> Any:
    """A PII plaintext as the pipeline encrypted it (Spark's cast to string)."""
    return None if value is None else str(value)


def _infinity_loaders(cur: Any) -> None:
    """±infinity timestamps and dates as the change capture's sentinels (psycopg refuses them)."""
    from psycopg.types.datetime import DateLoader, TimestampLoader, TimestamptzLoader

    sentinels = {
        "timestamp": (dt.datetime.max, dt.datetime.min),
        "timestamptz": (
            dt.datetime.max.replace(tzinfo=dt.timezone.utc),
            dt.datetime.min.replace(tzinfo=dt.timezone.utc),
        ),
        "date": (dt.date.max, dt.date.min),
    }
    for name, base in (
        ("timestamp", TimestampLoader),
        ("timestamptz", TimestamptzLoader),
        ("date", DateLoader),
    ):
        high, low = sentinels[name]

        def load(self: Any, data: Any, base: Any = base, high: Any = high, low: Any = low) -> Any:
            text = bytes(data)
            if text == b"infinity":
                return high
            if text == b"-infinity":
                return low
            return base.load(self, data)

        cur.adapters.register_loader(name, type(f"Infinity{base.__name__}", (base,), {"load": load}))


def _source_rows(conn: Any, table: str) -> tuple[list[str], list[tuple]]:
    cur = conn.cursor()
    _infinity_loaders(cur)
    cur.execute(sql.SQL("SELECT * FROM {}").format(declared(table).ident()))
    return [d.name for d in cur.description], cur.fetchall()


def _bronze_rows(spark: Any, df: Any, columns: list[str], key: str, order: str | None) -> dict[Any, list]:
    """key -> rows (column values in `columns` order); with `order`, only the last row per key by it."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    selected = []
    for c in columns:
        dtype = df.schema[c].dataType
        # instants as UTC, whatever the Python process's time zone
        if isinstance(dtype, T.TimestampType):
            selected.append(F.unix_micros(F.col(c)).alias(c))
        else:
            selected.append(F.col(c))
    if order and order in df.columns:
        from pyspark.sql.window import Window

        last = Window.partitionBy(key).orderBy(F.col(order).desc())
        df = df.withColumn("_rn", F.row_number().over(last)).where("_rn = 1")
    out: dict[Any, list] = {}
    for row in df.select(*selected).collect():
        out.setdefault(row[key], []).append(list(row))
    return out


def _quarantined_rows(spark: Any, paths: dict[str, Path], table: str, columns: list[str], key: str) -> dict:
    """key -> [its latest quarantine row]. A captured update that left a TOASTed value unchanged carries
    it as NULL (named in `_unchanged_cols`); the value held back is the one of the key's previous change
    that carried it, in the change archive (which holds every change, the first snapshot included)."""
    from pyspark.sql import functions as F

    q_path = paths.get(f"bz_{table}_quarantine")
    if not q_path:
        return {}
    q_df = spark.read.format("delta").load(str(q_path))
    if not all(c in q_df.columns for c in columns):
        return {}
    if "_unchanged_cols" not in q_df.columns:
        return _bronze_rows(spark, q_df, columns, key, "_seq")
    n, extra = len(columns), ["_seq", "_unchanged_cols"]
    latest = {k: rows[0] for k, rows in _bronze_rows(spark, q_df, [*columns, *extra], key, "_seq").items()}
    gaps = {k: row for k, row in latest.items() if row[n + 1]}
    history: dict[Any, list] = {}
    if gaps and (archive := paths.get(f"bz_{table}_changes")):
        a_df = spark.read.format("delta").load(str(archive)).where(F.col(key).isin(list(gaps)))
        history = _bronze_rows(spark, a_df, [*columns, *extra], key, None)
    out = {}
    for k, row in latest.items():
        filled = list(row[:n])
        earlier = sorted((r for r in history.get(k, []) if r[n] < row[n]), key=lambda r: r[n], reverse=True)
        for column in row[n + 1] or []:
            if column in columns:
                carried = next((r for r in earlier if column not in (r[n + 1] or [])), None)
                filled[columns.index(column)] = carried[columns.index(column)] if carried else None
        out[k] = [filled]
    return out


def compare_rows(
    spark: Any,
    storage: Path,
    conn: Any,
    config: BronzeConfig,
    tables: list[str] | None = None,
    keys: dict[str, set[Any]] | None = None,
) -> list[RowComparison]:
    """Row for row: every source row must be in bronze with the same values in every column (PII
    decrypted; SCD type 2 tables: the current rows), or held back in quarantine with those values; no key
    twice; no bronze key the source no longer has. For test- and crash-suite scales (rows are collected).
    `keys` ({table: keys}) limits the comparison of values to those source rows."""
    from inventory_bronze import pii

    paths = table_paths(storage)
    names = tables or config.table_names
    pii_keys = pii.load_keys() if any(config.table(t).pii for t in names) else None
    return [
        _compare_table(
            spark,
            paths,
            conn,
            table,
            set(config.table(table).pii),
            pii_keys,
            None if keys is None else keys.get(table, set()),
        )
        for table in names
    ]


def _compare_table(
    spark: Any,
    paths: dict[str, Path],
    conn: Any,
    table: str,
    pii_cols: set[str],
    keys: Any,
    only: set[Any] | None,
) -> RowComparison:
    from inventory_bronze import pii

    decl = declared(table)
    key = decl.primary_key[0]
    source_columns, source = _source_rows(conn, table)
    bz_df = _current(spark.read.format("delta").load(str(paths[target_name(table)])))
    columns = [c for c in source_columns if c in bz_df.columns]
    picked = [source_columns.index(c) for c in columns]
    kinds = {c.name: c.type for c in decl.columns}
    if pii_cols:  # a column the source added to a table holding PII is encrypted too (BronzeTable.protect)
        pii_cols |= set(undeclared_columns(columns, decl))

    def stored(row: list) -> tuple:
        values = []
        for c, v in zip(columns, row, strict=True):
            if c in pii_cols and v is not None:
                v = pii.decrypt_value(table, c, v, keys=keys)
            if kinds.get(c) == "timestamptz" and isinstance(v, int):
                v = _EPOCH + dt.timedelta(microseconds=v)
            values.append(_normal(v, kinds.get(c, "")))
        return tuple(values)

    def expected(row: tuple) -> tuple:
        values = []
        for c, v in zip(columns, row, strict=True):
            if c in pii_cols:
                v = _as_text(v.isoformat() if isinstance(v, dt.date) else v)
            values.append(_normal(v, kinds.get(c, "")))
        return tuple(values)

    bz = _bronze_rows(spark, bz_df, columns, key, None)
    quarantine = _quarantined_rows(spark, paths, table, columns, key)
    key_index = columns.index(key)
    matched = held = lost = wrong = 0
    examples: list[str] = []
    source_keys = set()
    for full in source:
        row = tuple(full[i] for i in picked)
        k = row[key_index]
        source_keys.add(k)
        if only is not None and k not in only:
            matched += 1
            continue
        want = expected(row)
        got = [stored(r) for r in bz.get(k, [])]
        if got and got[0] == want:
            matched += 1
        elif (q := [stored(r) for r in quarantine.get(k, [])]) and q[0] == want:
            held += 1
        elif got:
            wrong += 1
            diff = [c for c, a, b in zip(columns, got[0], want, strict=True) if a != b]
            if len(examples) < 5:
                examples.append(f"{table} {key}={k}: columns {diff} differ")
        else:
            lost += 1
            if len(examples) < 5:
                examples.append(f"{table} {key}={k}: lost")
    duplicated = sum(len(v) - 1 for v in bz.values())
    extra = len(set(bz) - source_keys)
    return RowComparison(table, len(source), matched, held, lost, duplicated, wrong, extra, tuple(examples))


def format_rows(rows: list[RowComparison]) -> str:
    head = (
        f"{'table':<16}{'source':>9}{'matched':>9}{'quarant.':>9}{'lost':>6}{'dup':>5}{'wrong':>7}"
        f"{'extra':>7}  status"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r.table:<16}{r.source_rows:>9,}{r.matched:>9,}{r.quarantined:>9,}{r.lost:>6,}"
            f"{r.duplicated:>5,}{r.wrong:>7,}{r.extra:>7,}  {'MATCH' if r.ok else 'MISMATCH'}"
        )
        lines.extend(f"    {e}" for e in r.examples)
    return "\n".join(lines)
