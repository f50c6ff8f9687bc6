"""Load generated data into `DE.tests` through COPY, fast and repeatably.

`seed_database(info, scale=..., seed=..., dirty_rate=...)`:

1. creates the declared schema when it is missing and drops the foreign keys, so COPY runs without
   per-row foreign-key triggers;
2. generates each table (see `generator`) in a background thread while the previous one is loading:
   Arrow -> binary COPY tuples (`pgbinary`, numpy) -> `COPY ... FROM STDIN (FORMAT binary, FREEZE)`, in
   slices of CHUNK_ROWS rows. One transaction per table: TRUNCATE, drop the primary key and indexes,
   COPY, build them again (one sorted index build is about twice as fast as two million index inserts). Text
   COPY would be 3-5x slower: the server parses every timestamp, numeric and uuid. FREEZE writes the rows
   frozen, so the first reads after a seed do not rewrite every page to set hint bits;
3. moves every identity past the loaded keys, re-adds the foreign keys `NOT VALID` (validated when the
   data is clean and `validate_foreign_keys` is set) and ANALYZEs the tables.

Tables stay in place (no DROP), so publications and replication slots on them survive a re-seed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from inventory_bronze.source.errors import GeneratorError
from inventory_bronze.source.schema import TABLES, TABLES_BY_NAME
from inventory_devkit.postgres import dirty as dirty_rules
from inventory_devkit.postgres import pgbinary
from inventory_devkit.postgres.ddl import (
    add_foreign_keys,
    check_database,
    create_schema,
    drop_foreign_keys,
    index_sql,
)
from inventory_devkit.postgres.generator import GeneratedTable, generate_tables, volumes
from inventory_devkit.postgres.server import ServerInfo


@dataclass
class TableLoad:
    table: str
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class SeedReport:
    scale: float
    seed: int
    dirty_rate: float
    tables: list[TableLoad] = field(default_factory=list)
    dirty_by_rule: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows(self) -> dict[str, int]:
        return {t.table: t.rows for t in self.tables}

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def rows_per_second(self) -> float:
        return self.total_rows / self.seconds if self.seconds > 0 else float("inf")

    @property
    def dirty(self) -> dict[str, int]:
        """Rows broken per kind of dirty data (every kind listed, zeros included)."""
        return dirty_rules.by_kind(self.dirty_by_rule)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "seed": self.seed,
            "dirty_rate": self.dirty_rate,
            "rows": self.rows,
            "total_rows": self.total_rows,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second),
            "dirty": self.dirty,
            "dirty_by_rule": dict(self.dirty_by_rule),
        }


CHUNK_ROWS = 200_000


def encode_chunks(generated: GeneratedTable) -> Iterator[bytes]:
    """The binary COPY stream of a generated table, in slices of CHUNK_ROWS rows."""
    declared = TABLES_BY_NAME[generated.name]
    pg_types = [declared.column(c).type for c in generated.data.column_names]
    yield pgbinary.HEADER
    for start in range(0, generated.rows, CHUNK_ROWS):
        yield pgbinary.encode_rows(generated.data.slice(start, CHUNK_ROWS), pg_types)
    yield pgbinary.TRAILER


def copy_statement(table: str, columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary, FREEZE)").format(
        TABLES_BY_NAME[table].ident(), sql.SQL(", ").join(map(sql.Identifier, columns))
    )


class _Pipeline:
    """The generator thread and the queue between it and the loader. The thread sends
    ("table", GeneratedTable), ("data", bytes)..., ("end", None) per table, then None (or an exception)."""

    def __init__(self, scale: float, seed: int, dirty_rate: float) -> None:
        self.queue: queue.Queue[object] = queue.Queue(maxsize=4)
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=self._produce, args=(scale, seed, dirty_rate), name="seed-generator", daemon=True
        )

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, scale: float, seed: int, dirty_rate: float) -> None:
        try:
            for generated in generate_tables(scale, seed, dirty_rate):
                if not self._put(("table", generated)):
                    return
                for chunk in encode_chunks(generated):
                    if not self._put(("data", chunk)):
                        return
                self._put(("end", None))
            self._put(None)
        except BaseException as err:  # handed to the loader, re-raised there
            self._put(err)

    def next(self) -> tuple[str, Any]:
        item = self.queue.get()
        if isinstance(item, BaseException):
            raise GeneratorError(f"Generating the seed data failed: {item}") from item
        if item is None:
            return "done", None
        return item  # type: ignore[return-value]

    def __enter__(self) -> _Pipeline:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()  # on an error, the generator stops at its next hand-over
        self.thread.join(timeout=30)


def _load_table(conn: psycopg.Connection, generated: GeneratedTable, pipeline: _Pipeline) -> None:
    """TRUNCATE, drop keys, COPY FREEZE the table's chunks, build keys; one transaction."""
    declared = TABLES_BY_NAME[generated.name]
    try:
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(declared.ident()))
        for stmt in (_primary_key_sql(declared.name, drop=True), *index_sql(declared, drop=True)):
            conn.execute(stmt)
        with (
            conn.cursor() as cur,
            cur.copy(copy_statement(declared.name, tuple(generated.data.column_names))) as copy,
        ):
            while True:
                kind, chunk = pipeline.next()
                if kind == "end":
                    break
                copy.write(chunk)
        for stmt in (_primary_key_sql(declared.name, drop=False), *index_sql(declared)):
            conn.execute(stmt)
        conn.commit()
    except psycopg.Error as err:
        conn.rollback()
        raise GeneratorError(
            f"Loading {declared.qualified} failed: {str(err).strip()}. The table may differ from the "
            f"declaration (see `ddl.check_database`): drop it and seed again."
        ) from err


def _primary_key_sql(table: str, *, drop: bool) -> sql.Composed:
    t = TABLES_BY_NAME[table]
    name = sql.Identifier(f"pk_{t.name}")
    if drop:
        return sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(t.ident(), name)
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
        t.ident(), name, sql.SQL(", ").join(map(sql.Identifier, t.primary_key))
    )


def reset_identities(conn: psycopg.Connection) -> None:
    """Move every identity sequence past the largest key, so inserts that omit the key do not collide."""
    for t in TABLES:
        key = t.primary_key[0]
        conn.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence({qn}, {col}), coalesce(max({k}), 0) + 1, false) FROM {t}"
            ).format(qn=sql.Literal(t.qualified), col=sql.Literal(key), k=sql.Identifier(key), t=t.ident())
        )


def seed_database(
    info: ServerInfo,
    *,
    scale: float = 1.0,
    seed: int = 42,
    dirty_rate: float = 0.0,
    validate_foreign_keys: bool = False,
    quiet: bool = False,
    echo: Callable[[str], None] = print,
) -> SeedReport:
    """Replace the content of DE.tests with generated data; returns counts, timings and dirty counts."""
    counts = volumes(scale)  # validates scale early
    say = (lambda _msg: None) if quiet else echo
    say(
        f"seed: scale {scale:g} ({sum(counts.values()):,} rows), seed {seed}, dirty rate {dirty_rate:g} "
        f"into {info.database}.{info.schema} at {info.url}"
    )
    report = SeedReport(scale=scale, seed=seed, dirty_rate=dirty_rate)
    started = time.perf_counter()
    create_schema(info)
    with info.connect() as conn:
        for problem in check_database(conn):  # e.g. a column added by `changes --add-column`: kept, NULL
            say(f"  note: {problem}")
        conn.commit()
        conn.execute("SET lock_timeout = '60s'")
        drop_foreign_keys(conn)
        conn.commit()
        mark = time.perf_counter()
        with _Pipeline(scale, seed, dirty_rate) as pipeline:
            while True:
                kind, generated = pipeline.next()
                if kind == "done":
                    break
                assert kind == "table" and isinstance(generated, GeneratedTable)
                _load_table(conn, generated, pipeline)
                now = time.perf_counter()
                load = TableLoad(generated.name, generated.rows, now - mark)
                mark = now
                report.tables.append(load)
                report.dirty_by_rule.update(generated.dirty)
                broken = sum(generated.dirty.values())
                say(
                    f"  {load.table:<14} {load.rows:>10,} rows {load.seconds:7.2f} s "
                    f"{load.rows_per_second:>12,.0f} rows/s" + (f"  ({broken:,} dirty)" if broken else "")
                )
        reset_identities(conn)
        add_foreign_keys(conn, validate=validate_foreign_keys and dirty_rate == 0)
        conn.commit()
        conn.autocommit = True
        conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(t.ident() for t in TABLES)))
    report.seconds = time.perf_counter() - started
    say(
        f"  {'total':<14} {report.total_rows:>10,} rows {report.seconds:7.2f} s {report.rows_per_second:>12,.0f} rows/s"
    )
    if dirty_rate > 0:
        say("  dirty rows: " + ", ".join(f"{k} {v:,}" for k, v in report.dirty.items()))
    return report


def checksums(conn: psycopg.Connection) -> dict[str, str]:
    """md5 of every table's rows in key order (text form), for determinism checks."""
    out: dict[str, str] = {}
    for t in TABLES:
        query = sql.SQL(
            "SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.{k}), '')) FROM {tab} t"
        ).format(k=sql.Identifier(t.primary_key[0]), tab=t.ident())
        row = conn.execute(query).fetchone()
        out[t.name] = str(row[0]) if row else ""
    return out


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in TABLES:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(t.ident())).fetchone()
        out[t.name] = int(row[0]) if row else 0
    return out
