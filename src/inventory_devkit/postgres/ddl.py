"""The tables of inventory_bronze.source.schema created in a PostgreSQL database (the local source), and
`check_database`: does a database hold them as declared."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from psycopg import sql

from inventory_bronze.source.schema import SCHEMA, TABLES, TABLES_BY_NAME, ForeignKey, Table

if TYPE_CHECKING:
    import psycopg

    from inventory_devkit.postgres.server import ServerInfo

# --- tables ------------------------------------------------------------------------------------------------


def create_table_sql(t: Table) -> sql.Composed:
    items: list[sql.Composable] = [c.ddl() for c in t.columns]
    items.append(
        sql.SQL("CONSTRAINT {} PRIMARY KEY ({})").format(
            sql.Identifier(f"pk_{t.name}"), sql.SQL(", ").join(map(sql.Identifier, t.primary_key))
        )
    )
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} (\n    {}\n)").format(
        t.ident(), sql.SQL(",\n    ").join(items)
    )


def table_options_sql(t: Table) -> list[sql.Composed]:
    """Storage of large text columns and the replica identity."""
    stmts = [
        sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET STORAGE EXTERNAL").format(t.ident(), sql.Identifier(c))
        for c in t.large_text_columns
    ]
    stmts.append(
        sql.SQL("ALTER TABLE {} REPLICA IDENTITY {}").format(t.ident(), sql.SQL(t.replica_identity.upper()))
    )
    return stmts


def index_name(t: Table, columns: tuple[str, ...]) -> str:
    return f"ix_{t.name}_" + "_".join(c.lower() for c in columns)


def index_sql(t: Table, *, drop: bool = False) -> list[sql.Composed]:
    """CREATE INDEX IF NOT EXISTS (or DROP INDEX IF EXISTS) for the declared secondary indexes."""
    if drop:
        return [
            sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(SCHEMA, index_name(t, cols)))
            for cols in t.indexes
        ]
    return [
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
            sql.Identifier(index_name(t, cols)), t.ident(), sql.SQL(", ").join(map(sql.Identifier, cols))
        )
        for cols in t.indexes
    ]


def foreign_key_sql(t: Table, fk: ForeignKey, *, not_valid: bool = True) -> sql.Composed:
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}){}").format(
        t.ident(),
        sql.Identifier(fk.name(t.name)),
        sql.Identifier(fk.column),
        TABLES_BY_NAME[fk.ref_table].ident(),
        sql.Identifier(fk.ref_column),
        sql.SQL(" NOT VALID" if not_valid else ""),
    )


def ddl(tables: Iterable[Table] = TABLES) -> list[sql.Composed]:
    """Every statement that creates the declared schema (tables, storage, replica identity, foreign keys)."""
    chosen = list(tables)
    stmts: list[sql.Composed] = [sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA))]
    for t in chosen:
        stmts.append(create_table_sql(t))
        stmts.extend(table_options_sql(t))
        stmts.extend(index_sql(t))
    for t in chosen:
        stmts.extend(foreign_key_sql(t, fk) for fk in t.foreign_keys)
    return stmts


def ddl_text(conn: psycopg.Connection) -> str:
    """The DDL as one SQL script (for reading or docs)."""
    return ";\n\n".join(s.as_string(conn) for s in ddl()) + ";\n"


def drop_foreign_keys(conn: psycopg.Connection) -> None:
    for t in TABLES:
        for fk in t.foreign_keys:
            conn.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
                    t.ident(), sql.Identifier(fk.name(t.name))
                )
            )


def add_foreign_keys(conn: psycopg.Connection, *, validate: bool = False) -> None:
    """(Re)create every declared foreign key NOT VALID; `validate` then checks the existing rows."""
    drop_foreign_keys(conn)
    for t in TABLES:
        for fk in t.foreign_keys:
            conn.execute(foreign_key_sql(t, fk))
    if validate:
        for t in TABLES:
            for fk in t.foreign_keys:
                conn.execute(
                    sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
                        t.ident(), sql.Identifier(fk.name(t.name))
                    )
                )


def create_schema(info: ServerInfo, *, drop: bool = False) -> None:
    """Create the ten tables (if missing) as the login role; `drop` first drops them (data included)."""
    with info.connect() as conn:
        conn.execute("SET lock_timeout = '30s'")
        if drop:
            for t in reversed(TABLES):
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(t.ident()))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
        for t in TABLES:
            conn.execute(create_table_sql(t))
            for stmt in (*table_options_sql(t), *index_sql(t)):
                conn.execute(stmt)
        present = existing_foreign_keys(conn)
        for t in TABLES:
            for fk in t.foreign_keys:
                if fk.name(t.name) not in present:
                    conn.execute(foreign_key_sql(t, fk))


def existing_foreign_keys(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute(
        "SELECT conname FROM pg_constraint WHERE contype = 'f' AND connamespace = %s::regnamespace", (SCHEMA,)
    ).fetchall()
    return {r[0] for r in rows}


def check_database(conn: psycopg.Connection) -> list[str]:
    """Differences between the database and the declaration (missing tables/columns, other types,
    nullability, primary keys); empty when they match. Extra columns (e.g. added by the workload) are
    reported too."""
    problems: list[str] = []
    rows = conn.execute(
        """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
        """,
        (SCHEMA,),
    ).fetchall()
    actual: dict[str, dict[str, tuple[str, bool]]] = {}
    for rel, col, type_, notnull in rows:
        actual.setdefault(rel, {})[col] = (type_, notnull)
    for t in TABLES:
        cols = actual.get(t.name)
        if cols is None:
            problems.append(
                f"table {t.qualified} is missing: run `inventory-bronze seed` (it creates the schema)"
            )
            continue
        for c in t.columns:
            if c.name not in cols:
                problems.append(f"{t.qualified}.{c.name} is missing")
                continue
            type_, notnull = cols[c.name]
            if _canonical(type_) != _canonical(c.type):
                problems.append(f"{t.qualified}.{c.name} is {type_}, declared {c.type}")
            if notnull != (not c.nullable):
                problems.append(f"{t.qualified}.{c.name} nullability differs from the declaration")
        for extra in sorted(set(cols) - set(t.column_names)):
            problems.append(f"{t.qualified}.{extra} is not declared")
    return problems


_ALIASES = {
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "character varying": "varchar",
    "double precision": "float8",
}


def _canonical(type_: str) -> str:
    text = type_.strip().lower()
    return _ALIASES.get(text, text)
