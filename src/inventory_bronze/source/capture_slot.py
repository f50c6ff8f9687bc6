"""Publications and logical replication slots of the change capture: set up, drop, status, checks.

One capture = one table, one publication (`FOR TABLE` that table) and one pgoutput slot, both named
`<prefix>_<table>` by default (prefix `ib_cdc`). A slot per table lets each stream confirm its own
progress: a shared slot could only advance when every stream had committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inventory_bronze.source.capture_errors import (
    CaptureConfigError,
    CaptureError,
    ReplicaIdentityError,
    SlotInvalidatedError,
    SlotMissingError,
)
from inventory_bronze.source.capture_pgoutput import lsn_int, lsn_text

if TYPE_CHECKING:
    import psycopg

DEFAULT_PREFIX = "ib_cdc"


def split_table(qualified: str) -> tuple[str, str]:
    schema, dot, table = qualified.partition(".")
    if not dot or not schema or not table:
        raise CaptureConfigError(f"Table '{qualified}' must be written schema.table (e.g. tests.orders).")
    return schema, table


def default_name(qualified: str, prefix: str = DEFAULT_PREFIX) -> str:
    schema, table = split_table(qualified)
    name = f"{prefix}_{table}" if schema == "tests" else f"{prefix}_{schema}_{table}"
    return name.lower()[:63]


@dataclass(frozen=True)
class CaptureNames:
    table: str
    slot: str
    publication: str

    @classmethod
    def for_table(cls, table: str, slot: str | None = None, publication: str | None = None) -> CaptureNames:
        split_table(table)
        return cls(table, slot or default_name(table), publication or default_name(table))


@dataclass(frozen=True)
class SlotState:
    name: str
    exists: bool
    plugin: str | None = None
    database: str | None = None
    active: bool = False
    confirmed_flush_lsn: int | None = None
    restart_lsn: int | None = None
    wal_status: str | None = None
    invalidation: str | None = None
    retained_bytes: int | None = None

    def describe(self) -> str:
        if not self.exists:
            return f"slot {self.name}: missing"
        flushed = lsn_text(self.confirmed_flush_lsn) if self.confirmed_flush_lsn is not None else "-"
        parts = [
            f"slot {self.name}: plugin {self.plugin}",
            f"confirmed {flushed}",
            f"WAL status {self.wal_status or '-'}",
            f"retained {self.retained_bytes or 0} bytes",
            "active" if self.active else "idle",
        ]
        if self.invalidation:
            parts.append(f"INVALIDATED ({self.invalidation})")
        return ", ".join(parts)


def recovery_command(names: CaptureNames) -> str:
    return (
        f"inventory-bronze capture drop --table {names.table} && inventory-bronze capture setup --table "
        f"{names.table}, then restart the stream with a new checkpoint (or a full refresh) so it takes a "
        f"fresh snapshot"
    )


def slot_state(conn: psycopg.Connection, slot: str) -> SlotState:
    row = conn.execute(
        """SELECT plugin, database, active, confirmed_flush_lsn::text, restart_lsn::text, wal_status,
                  inval,
                  pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint
           FROM (SELECT *, CASE WHEN conflicting THEN 'conflicting' WHEN wal_status = 'lost'
                                THEN 'wal_removed' END AS inval
                 FROM pg_replication_slots) s
           WHERE slot_name = %s""",
        (slot,),
    ).fetchone()
    if row is None:
        return SlotState(slot, False)
    plugin, database, active, confirmed, restart, wal_status, invalidation, retained = row
    return SlotState(
        slot,
        True,
        plugin,
        database,
        bool(active),
        lsn_int(confirmed) if confirmed else None,
        lsn_int(restart) if restart else None,
        wal_status,
        invalidation,
        int(retained) if retained is not None else None,
    )


def require_usable_slot(conn: psycopg.Connection, names: CaptureNames) -> SlotState:
    state = slot_state(conn, names.slot)
    if not state.exists:
        raise SlotMissingError(
            f"Replication slot '{names.slot}' for {names.table} does not exist: create it with "
            f"`inventory-bronze capture setup --table {names.table}` (if it was dropped while a stream "
            f"used it, changes were lost: {recovery_command(names)})."
        )
    if state.plugin != "pgoutput":
        raise CaptureConfigError(
            f"Replication slot '{names.slot}' uses plugin '{state.plugin}', the capture needs pgoutput: "
            f"{recovery_command(names)}."
        )
    if state.invalidation or state.confirmed_flush_lsn is None:
        raise SlotInvalidatedError(
            f"Replication slot '{names.slot}' for {names.table} is invalidated "
            f"({state.invalidation or 'no confirmed position'}): the WAL it needed is gone and changes "
            f"were lost. Recover: {recovery_command(names)}."
        )
    return state


# --- replica identity -----------------------------------------------------------------------------------


def replica_identity_problem(conn: psycopg.Connection, qualified: str) -> str | None:
    """Why the table's REPLICA IDENTITY does not suit the capture, or None when it does."""
    schema, table = split_table(qualified)
    row = conn.execute(
        """SELECT c.relreplident, c.relkind,
                  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
                  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = %s AND c.relname = %s""",
        (schema, table),
    ).fetchone()
    if row is None:
        return f"table {qualified} does not exist"
    ident, kind, has_pk, has_ident_index = row
    fix_pk = f"add a primary key, or ALTER TABLE {qualified} REPLICA IDENTITY FULL"
    if kind not in ("r", "p"):
        return f"{qualified} is not a table (relkind {kind})"
    if ident == "n":
        return f"{qualified} has REPLICA IDENTITY NOTHING, so its updates and deletes carry no key: {fix_pk}"
    if ident == "d" and not has_pk:
        return (
            f"{qualified} has REPLICA IDENTITY DEFAULT but no primary key, so deletes carry no key: {fix_pk}"
        )
    if ident == "i" and not has_ident_index:
        return f"{qualified} has REPLICA IDENTITY USING INDEX, but that index is gone: {fix_pk}"
    return None


def check_replica_identity(conn: psycopg.Connection, tables: Iterable[str]) -> None:
    problems = [p for p in (replica_identity_problem(conn, t) for t in tables) if p]
    if problems:
        raise ReplicaIdentityError(
            "REPLICA IDENTITY does not suit change capture: " + "; ".join(problems) + "."
        )


# --- set up, drop, status -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetupResult:
    names: CaptureNames
    created_publication: bool
    created_slot: bool
    consistent_lsn: int


def _wal_level(conn: psycopg.Connection) -> str:
    return str(conn.execute("SHOW wal_level").fetchone()[0])


def setup_capture(conn: psycopg.Connection, names: CaptureNames) -> SetupResult:
    """Create the table's publication and pgoutput slot (idempotent); check REPLICA IDENTITY first."""
    from psycopg import sql

    if _wal_level(conn) != "logical":
        raise CaptureError(
            "The source server runs with wal_level other than 'logical': set wal_level = logical and "
            "restart it (the local server of `inventory-bronze db start` does)."
        )
    check_replica_identity(conn, [names.table])
    schema, table = split_table(names.table)
    created_pub = False
    pub = conn.execute("SELECT oid FROM pg_publication WHERE pubname = %s", (names.publication,)).fetchone()
    if pub is None:
        conn.execute(
            sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
                sql.Identifier(names.publication), sql.Identifier(schema, table)
            )
        )
        created_pub = True
    else:
        member = conn.execute(
            "SELECT 1 FROM pg_publication_tables WHERE pubname = %s AND schemaname = %s AND tablename = %s",
            (names.publication, schema, table),
        ).fetchone()
        if member is None:
            conn.execute(
                sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(
                    sql.Identifier(names.publication), sql.Identifier(schema, table)
                )
            )
    state = slot_state(conn, names.slot)
    created_slot = False
    if not state.exists:
        row = conn.execute(
            "SELECT lsn::text FROM pg_create_logical_replication_slot(%s, 'pgoutput')", (names.slot,)
        ).fetchone()
        created_slot = True
        consistent = lsn_int(row[0])
    else:
        state = require_usable_slot(conn, names)
        consistent = int(state.confirmed_flush_lsn or 0)
    return SetupResult(names, created_pub, created_slot, consistent)


def ensure_capture(tables: Iterable[str]) -> list[str]:
    """Create the publication and replication slot of each captured table, qualified (idempotent), on the
    source the secrets chain names; returns what it did, one line per table. Run before the first update
    (`run`, the demo and `capture setup` do)."""
    from inventory_bronze.secrets import source_connection
    from inventory_bronze.source.capture_connection import open_connection

    lines = []
    with open_connection(source_connection()) as conn:
        for qualified in tables:
            result = setup_capture(conn, CaptureNames.for_table(qualified))
            state = "created" if result.created_slot else "exists"
            lines.append(f"{qualified}: slot {result.names.slot} {state}")
    return lines


def drop_capture(conn: psycopg.Connection, names: CaptureNames) -> tuple[bool, bool]:
    """Drop the slot (first: it pins WAL) and the publication. Returns what existed."""
    from psycopg import sql

    state = slot_state(conn, names.slot)
    if state.exists:
        if state.active:
            raise CaptureError(
                f"Replication slot '{names.slot}' is in use by a running stream: stop the stream first."
            )
        conn.execute("SELECT pg_drop_replication_slot(%s)", (names.slot,))
    pub = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (names.publication,)).fetchone()
    if pub is not None:
        conn.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(names.publication)))
    return state.exists, pub is not None


def capture_status(conn: psycopg.Connection, names: CaptureNames) -> dict[str, Any]:
    state = slot_state(conn, names.slot)
    pub = conn.execute(
        "SELECT count(*) FROM pg_publication_tables WHERE pubname = %s", (names.publication,)
    ).fetchone()
    return {
        "table": names.table,
        "slot": state.describe(),
        "publication": f"{names.publication}: {'missing' if not pub or not pub[0] else f'{pub[0]} table(s)'}",
        "replica_identity": replica_identity_problem(conn, names.table) or "ok",
    }


# --- reading and confirming -----------------------------------------------------------------------------


def advance_slot(conn: psycopg.Connection, names: CaptureNames, lsn: int) -> None:
    """Confirm everything before `lsn` (a transaction's end LSN) while no stream holds the slot (a stream
    confirms through its own connection): the server may recycle that WAL."""
    state = require_usable_slot(conn, names)
    if state.confirmed_flush_lsn is not None and state.confirmed_flush_lsn >= lsn:
        return
    conn.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (names.slot, lsn_text(lsn)))


#: the text output the converters expect: UTC, ISO dates, hex bytea, exact floats
SESSION_SETTINGS = (
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO,YMD"),
    ("bytea_output", "hex"),
    ("extra_float_digits", "3"),
)
#: the same as connection options (a replication connection's walsender takes them at start-up)
SESSION_OPTIONS = " ".join(f"-c {name}={value}" for name, value in SESSION_SETTINGS)


def prepare_session(conn: psycopg.Connection) -> None:
    """Set SESSION_SETTINGS on an open connection."""
    for name, value in SESSION_SETTINGS:
        conn.execute(f"SET {name} = '{value}'")
