"""`pgcdc`: a PySpark streaming data source of one PostgreSQL table's changes, read from the WAL through
logical decoding (pgoutput), with LSN offsets and a replication slot confirmed only after Spark commits.

    from inventory_bronze.source.capture import register
    register(spark)                                  # once per session (also on Databricks)
    df = (spark.readStream.format("pgcdc")
          .option("table", "tests.orders")           # required: schema.table
          .load())

Options (all optional except `table`):

| option             | default                 | meaning                                                  |
|--------------------|-------------------------|----------------------------------------------------------|
| table              | -                       | schema.table to capture                                  |
| slot / publication | ib_cdc_<table>          | created by `inventory-bronze capture setup`              |
| snapshot           | true                    | first batch = the table's rows (`_op` = 'snapshot')     |
| maxChangesPerBatch | 100000                  | upper bound of changes decoded per micro-batch           |
| reconnectTimeout   | 60                      | seconds to keep retrying a refused connection            |
| schemaChanges      | fail                    | `fail`: stop when the table gains a column or changes a  |
|                    |                         | column's type after the stream's schema was read (below);|
|                    |                         | `ignore`: keep the stream's schema (a given schema)      |
| urlSecret, userSecret, passwordSecret | KConnectionString, KUser, KPassword | secret names |
| secretScope, keyVaultUrl, secretsFile | environment  | settings of the secrets chain          |
| url, user, password | -                        | resolved values instead of secret names (below)  |

Connection: the data source's Python workers resolve the secret names through the secrets chain
(`inventory_bronze.secrets`). Where the workers cannot reach the chain (on Databricks, `dbutils` lives only
in the notebook's process), resolve in the driver and pass values:
`.options(**capture_connection.resolved_options())` (Spark redacts options named like *password*).

Output: the table's columns (typed from the catalog, see `capture_types`) and
`_op` insert|update|delete|truncate|snapshot, `_lsn` (commit LSN as a long), `_commit_ts` (UTC),
`_seq` (long: `_lsn << 20 | position in the transaction`; orders every change of the stream; a
transaction with more than 2^20 - 1 changes of one table fails with a clear error) and
`_unchanged_cols` (columns whose unchanged TOAST value was not sent: they are NULL in the row and the
consumer must keep its previous value, e.g. `apply_changes(..., ignore_null_updates_column_list=...)`
restricted to those columns, or a merge that keeps the old value for the listed columns; note that
`ignore_null_updates_column_list` also ignores a real update to NULL of those columns, so list only
large TOAST-able columns, or use a merge driven by `_unchanged_cols` where that matters).
Deletes carry the replica identity (the primary key, or every column with REPLICA IDENTITY FULL); a
truncate is one row with only the metadata set. An update that changes the primary key is emitted as a
delete of the old key followed by an insert of the new one.

Schema changes: the stream's schema is the table's when the query is defined. A column the table gains
later, or a column whose type changes, would not fit it: the stream fails (`schemaChanges` = fail) with an
error naming the columns before the batch holding such a change is planned, so nothing is lost; the next
query reads the new schema and those changes again. A column the table drops is NULL in later changes.

Snapshot consistency: the first batch holds the table's rows read in one REPEATABLE READ transaction at a
moment T after the slot's position C (`_lsn` = C, `_seq` below every change of the stream), plus the
changes committed after C. Changes committed between C and T are therefore in the snapshot and again in
the stream, in order after it: applying snapshot + stream as keyed upserts/deletes (apply_changes) ends
exactly in the source's state, nothing lost and nothing doubled in the final table.

Reading: one replication connection per stream (PostgreSQL's streaming protocol, `capture_stream`): the
server decodes each transaction once and sends it as it commits; a thread of the reader's process
decodes pgoutput into rows as they come, so a trigger finds them ready (nothing is decoded twice, however
many triggers pass before a batch is confirmed).

Exactly-once: an offset is a WAL position: every transaction committed before it belongs to earlier
batches. A batch [start, end) holds the transactions whose commit LSN lies in it; `commit(end)` confirms
`end` to the server only after Spark has committed the batch, so a restarted query (or a restarted
server) streams again from its checkpoint exactly the uncommitted batches. With nothing of the table to
deliver, an offset still moves past the other tables' WAL once 16 MB of it piled up, so the slot does
not keep it.

Long because: the `pgcdc` data source is one Spark DataSource surface (source, stream reader, partitions,
offsets); decoding, slots and the replication stream already live in capture_*.py.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.types import StructType

from inventory_bronze.secrets import SourceConnection
from inventory_bronze.source.capture_connection import connection_from_options, lower_keys, open_connection
from inventory_bronze.source.capture_errors import (
    CaptureConfigError,
    CaptureSchemaChanged,
    DecodeError,
    SlotInvalidatedError,
)
from inventory_bronze.source.capture_pgoutput import (
    UNCHANGED,
    Change,
    Relation,
    Transaction,
    lsn_int,
    lsn_text,
)
from inventory_bronze.source.capture_slot import (
    CaptureNames,
    advance_slot,
    prepare_session,
    require_usable_slot,
    split_table,
)
from inventory_bronze.source.capture_stream import ChangeBuffer
from inventory_bronze.source.capture_types import (
    META_NAMES,
    catalog_columns,
    convert_value,
    converter_for_field,
    spark_schema,
    spark_type_for,
)

if TYPE_CHECKING:  # psycopg is imported where used: executors that only hand on rows never load it
    import psycopg

try:  # pyspark >= 4.2; Databricks runtimes without it still run the source (no AvailableNow limits)
    from pyspark.sql.streaming.datasource import ReadMaxRows, SupportsTriggerAvailableNow
except ImportError:  # pragma: no cover
    ReadMaxRows = None  # type: ignore[assignment,misc]

    class SupportsTriggerAvailableNow:  # type: ignore[no-redef]
        pass


SHORT_NAME = "pgcdc"
SEQ_SHIFT = 20
MAX_POSITION = (1 << SEQ_SHIFT) - 1
DEFAULT_MAX_CHANGES = 100_000
SNAPSHOT_FETCH_ROWS = 10_000


def _flag(options: Mapping[str, str], key: str, default: bool) -> bool:
    raw = options.get(key.lower())
    if raw is None:
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise CaptureConfigError(f"Option '{key}' must be true or false, not {raw!r}.")


def _int(options: Mapping[str, str], key: str, default: int) -> int:
    raw = options.get(key.lower())
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        raise CaptureConfigError(f"Option '{key}' must be a whole number, not {raw!r}.") from None
    if value <= 0:
        raise CaptureConfigError(f"Option '{key}' must be positive, not {value}.")
    return value


@dataclass(frozen=True)
class CaptureSettings:
    names: CaptureNames
    snapshot: bool
    max_changes: int
    reconnect_timeout_s: float
    fail_on_schema_change: bool = True

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> CaptureSettings:
        options = lower_keys(options)
        table = options.get("table")
        if not table:
            raise CaptureConfigError(
                "The pgcdc source needs option 'table' (schema.table, e.g. .option('table', 'tests.orders'))."
            )
        return cls(
            CaptureNames.for_table(table, options.get("slot"), options.get("publication")),
            _flag(options, "snapshot", True),
            _int(options, "maxChangesPerBatch", DEFAULT_MAX_CHANGES),
            float(_int(options, "reconnectTimeout", 60)),
            _schema_changes(options.get("schemachanges", "fail")),
        )


def _schema_changes(raw: str) -> bool:
    if raw.lower() not in ("fail", "ignore"):
        raise CaptureConfigError(f"Option 'schemaChanges' must be fail or ignore, not {raw!r}.")
    return raw.lower() == "fail"


def seq_of(commit_lsn: int, position: int, table: str) -> int:
    if position > MAX_POSITION:
        raise DecodeError(
            f"A transaction committed at {lsn_text(commit_lsn)} has more than {MAX_POSITION} changes of "
            f"{table}: `_seq` cannot order them; order by (_lsn, _seq & {MAX_POSITION}) instead."
        )
    return (commit_lsn << SEQ_SHIFT) | position


# --- rows -----------------------------------------------------------------------------------------------


class _RowBuilder:
    """Builds output tuples in the stream's schema from decoded changes."""

    def __init__(self, schema: StructType, table: str) -> None:
        self.table = table
        self.data_fields = [f for f in schema.fields if f.name not in META_NAMES]
        self.converters = {f.name: converter_for_field(f) for f in self.data_fields}
        missing = [m for m in META_NAMES if m not in schema.fieldNames()]
        if missing:
            raise CaptureConfigError(f"A schema given to pgcdc must include the metadata columns {missing}.")
        self.order = schema.fieldNames()

    def _values(self, values: Mapping[str, object] | None) -> tuple[dict[str, Any], list[str]]:
        out: dict[str, Any] = {}
        unchanged: list[str] = []
        for f in self.data_fields:
            raw = values.get(f.name) if values else None
            if raw is UNCHANGED:
                unchanged.append(f.name)
                out[f.name] = None
            elif raw is None:
                out[f.name] = None
            else:
                out[f.name] = convert_value(self.converters[f.name], str(raw), f"{self.table}.{f.name}")
        return out, unchanged

    def row(
        self, op: str, values: Mapping[str, object] | None, lsn: int, ts: dt.datetime | None, seq: int
    ) -> tuple:
        data, unchanged = self._values(values)
        meta = {"_op": op, "_lsn": lsn, "_commit_ts": ts, "_seq": seq, "_unchanged_cols": unchanged}
        return tuple(meta[name] if name in meta else data[name] for name in self.order)


def _is_target(relation: Relation, schema: str, table: str) -> bool:
    return relation.namespace == schema and relation.name == table


def change_rows(txn: Transaction, builder: _RowBuilder, schema: str, table: str) -> list[tuple]:
    """Output rows of one transaction's changes to the target table, in transaction order."""
    rows: list[tuple] = []
    position = 0
    for change in txn.changes:
        for op, values in _expand(change, schema, table):
            rows.append(
                builder.row(
                    op, values, txn.commit_lsn, txn.commit_ts, seq_of(txn.commit_lsn, position, table)
                )
            )
            position += 1
    return rows


def _expand(change: Change, schema: str, table: str) -> list[tuple[str, Mapping[str, object] | None]]:
    if change.op == "truncate":
        return [("truncate", None)] if _truncates_target(change, schema, table) else []
    if not _is_target(change.relation, schema, table):
        return []
    if change.op == "update" and change.old is not None and change.new is not None:
        keys = [c.name for c in change.relation.columns if c.is_key]
        if keys and any(change.old.get(k) != change.new.get(k) for k in keys):
            return [("delete", change.old), ("insert", change.new)]
    return [(change.op, change.new if change.op != "delete" else change.old)]


def _truncates_target(change: Change, schema: str, table: str) -> bool:
    return any(_is_target(r, schema, table) for r in change.truncated)


# --- partitions -----------------------------------------------------------------------------------------


ARROW_BATCH_ROWS = 10_000


class ChangesPartition(InputPartition):
    """Rows decoded on the driver (decoding needs the slot, which one session uses at a time), shipped
    as Arrow IPC so the executor hands them to Spark without converting row by row."""

    def __init__(self, rows: list[tuple], schema: StructType) -> None:
        super().__init__(len(rows))
        self.count = len(rows)
        self.ipc = _arrow_ipc(rows, schema)

    def batches(self) -> Iterator[Any]:
        import pyarrow as pa

        with pa.ipc.open_stream(self.ipc) as stream:
            yield from stream


def arrow_schema(schema: StructType) -> Any:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema, timezone="UTC")


def _arrow_ipc(rows: list[tuple], schema: StructType) -> bytes:
    import pyarrow as pa

    pa_schema = arrow_schema(schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, pa_schema) as writer:
        for offset in range(0, len(rows), ARROW_BATCH_ROWS):
            chunk = rows[offset : offset + ARROW_BATCH_ROWS]
            columns = list(zip(*chunk, strict=True))
            arrays = [
                pa.array(list(col), type=field.type) for col, field in zip(columns, pa_schema, strict=True)
            ]
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=pa_schema))
    return sink.getvalue().to_pybytes()


class SnapshotPartition(InputPartition):
    """The table's rows, read on an executor in one REPEATABLE READ transaction."""

    def __init__(self, conn: SourceConnection, table: str, lsn: int, reconnect_timeout_s: float) -> None:
        super().__init__(table)
        self.conn = conn
        self.table = table
        self.lsn = lsn
        self.reconnect_timeout_s = reconnect_timeout_s

    def __repr__(self) -> str:
        return f"SnapshotPartition(table={self.table!r}, lsn={lsn_text(self.lsn)})"


def read_snapshot(partition: SnapshotPartition, schema: StructType) -> Iterator[Any]:
    """The table's rows in one REPEATABLE READ transaction: Arrow batches through COPY where every column
    type allows (`snapshot_copy`, several times faster), else tuples through a server-side cursor."""
    from inventory_bronze.source import snapshot_copy

    schema_name, table = split_table(partition.table)
    builder = _RowBuilder(schema, partition.table)
    seq = (partition.lsn << SEQ_SHIFT) - 1  # below every change of the stream
    with open_connection(partition.conn, autocommit=False, retry_for_s=partition.reconnect_timeout_s) as conn:
        prepare_session(conn)
        conn.commit()
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        (now,) = conn.execute("SELECT now()").fetchone()
        if snapshot_copy.arrow_supported(builder.data_fields):
            target = arrow_schema(schema)
            meta = {
                "_op": "snapshot",
                "_lsn": partition.lsn,
                "_commit_ts": now,
                "_seq": seq,
                "_unchanged_cols": [],
            }
            for batch in snapshot_copy.copy_batches(conn, schema_name, table, builder.data_fields):
                yield snapshot_copy.with_constants(batch, target, meta)
        else:
            yield from _snapshot_rows(conn, builder, partition.table, partition.lsn, now, seq)
        conn.rollback()


def _snapshot_rows(
    conn: psycopg.Connection, builder: _RowBuilder, qualified: str, lsn: int, now: dt.datetime, seq: int
) -> Iterator[tuple]:
    from psycopg import sql

    schema_name, table = split_table(qualified)
    columns = [f.name for f in builder.data_fields]
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns),
        sql.Identifier(schema_name, table),
    )
    with conn.cursor(name="pgcdc_snapshot") as cursor:
        cursor.itersize = SNAPSHOT_FETCH_ROWS
        cursor.execute(query)
        for record in cursor:
            yield builder.row("snapshot", dict(zip(columns, record, strict=True)), lsn, now, seq)


# --- the source -----------------------------------------------------------------------------------------


class PgCdcDataSource(DataSource):
    """`spark.readStream.format("pgcdc").option("table", "schema.table")`: see the module docstring."""

    @classmethod
    def name(cls) -> str:
        return SHORT_NAME

    def schema(self) -> StructType:
        settings = CaptureSettings.from_options(self.options)
        conn_settings = connection_from_options(self.options)
        with open_connection(conn_settings, retry_for_s=settings.reconnect_timeout_s) as conn:
            schema_name, table = split_table(settings.names.table)
            return spark_schema(catalog_columns(conn, schema_name, table))

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        return PgCdcStreamReader(dict(self.options), schema)


class PgCdcStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    def __init__(self, options: Mapping[str, str], schema: StructType) -> None:
        self.options = dict(options)
        self.settings = CaptureSettings.from_options(self.options)
        self.schema_ = schema
        self.source = connection_from_options(self.options)
        self.names = self.settings.names
        self.schema_name, self.table = split_table(self.names.table)
        self.builder = _RowBuilder(schema, self.names.table)
        self._conn: psycopg.Connection | None = None
        self._buffer: ChangeBuffer | None = None
        self._stop_at: int | None = None
        self._last_end: dict | None = None
        self._relations_seen: set[Relation] = set()

    # -- connection with retries (a server restart must not lose the stream) --

    def _run(self, action: Any) -> Any:
        import psycopg

        deadline = time.monotonic() + self.settings.reconnect_timeout_s
        while True:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = open_connection(self.source, retry_for_s=self.settings.reconnect_timeout_s)
                    prepare_session(self._conn)
                return action(self._conn)
            except (psycopg.OperationalError, psycopg.errors.ObjectInUse) as err:
                self._close_connection()
                if time.monotonic() > deadline:
                    raise SlotInvalidatedError(
                        f"Lost the connection to the source while capturing {self.names.table} "
                        f"({type(err).__name__}) for {self.settings.reconnect_timeout_s:.0f} s: restart the "
                        f"query once the server is back; nothing is lost (the slot keeps the WAL)."
                    ) from None
                time.sleep(0.5)

    def _close(self) -> None:
        self._close_connection()
        if self._buffer is not None:
            self._buffer.close()
        self._buffer = None

    def _close_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
        self._conn = None

    # -- offsets --

    def initialOffset(self) -> dict:
        state = self._run(lambda c: require_usable_slot(c, self.names))
        return self._offset(int(state.confirmed_flush_lsn), snapshot_done=not self.settings.snapshot)

    def _offset(self, lsn: int, *, snapshot_done: bool) -> dict:
        return {
            "lsn": lsn,
            "lsn_text": lsn_text(lsn),
            "snapshot_done": snapshot_done,
            "slot": self.names.slot,
        }

    def _check_offset(self, offset: dict) -> None:
        if offset.get("slot") != self.names.slot:
            raise CaptureConfigError(
                f"The checkpoint was written for slot '{offset.get('slot')}', this stream reads slot "
                f"'{self.names.slot}': use a new checkpoint location for a different slot."
            )

    def prepareForTriggerAvailableNow(self) -> None:
        self._stop_at = self._run(
            lambda c: lsn_int(c.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])
        )

    def getDefaultReadLimit(self) -> Any:
        if ReadMaxRows is None:  # pragma: no cover
            return super().getDefaultReadLimit()
        return ReadMaxRows(self.settings.max_changes)

    def latestOffset(self, start: dict | None = None, limit: Any = None) -> dict:
        if start is None:  # Spark before 4.2 calls latestOffset() without arguments
            start = self._last_end or self.initialOffset()
        self._check_offset(start)
        max_rows = getattr(limit, "maxRows", None) if limit is not None else self.settings.max_changes
        start_lsn = int(start["lsn"])
        buffer = self._buffer_from(start_lsn)
        if self._stop_at is not None:  # a triggered update: everything committed before it started
            buffer.wait_until(self._stop_at, self.settings.reconnect_timeout_s)
        end_lsn = buffer.end_of_next_batch(start_lsn, max_rows, self._stop_at)
        end = self._offset(end_lsn, snapshot_done=True)
        if end_lsn == start_lsn and start.get("snapshot_done"):
            end = start
        self._last_end = end
        return end

    def _buffer_from(self, lsn: int) -> ChangeBuffer:
        """The transactions from `lsn` on, streamed from the slot (a new stream when the current one
        started after `lsn`, as when a restarted query re-plans its last batch)."""
        if self._buffer is None or self._buffer.start_lsn > lsn:
            if self._buffer is not None:
                self._buffer.close()
            self._buffer = ChangeBuffer(
                self.source,
                self.names,
                lsn,
                self._rows_of,
                max_rows=self.settings.max_changes,
                reconnect_timeout_s=self.settings.reconnect_timeout_s,
            )
        return self._buffer

    def _rows_of(self, txn: Transaction) -> list[tuple]:
        if self.settings.fail_on_schema_change:
            for change in txn.changes:
                relation = change.relation
                if relation is not None and relation not in self._relations_seen:
                    if _is_target(relation, self.schema_name, self.table):
                        self._check_relation(relation)
                    self._relations_seen.add(relation)
        return change_rows(txn, self.builder, self.schema_name, self.table)

    def _check_relation(self, relation: Relation) -> None:
        """Fail when a change carries a column, or a column type, the table took after the stream's schema
        was read (the catalog has it now). A relation from before the schema was read (a column dropped or
        retyped since) is decoded with the stream's schema. Runs on the stream's decoding thread."""
        fields = {f.name: f.dataType for f in self.builder.data_fields}
        odd = [
            c
            for c in relation.columns
            if c.name not in fields or spark_type_for(c.type_oid, c.typmod)[0] != fields[c.name]
        ]
        if not odd:
            return
        with open_connection(self.source, retry_for_s=self.settings.reconnect_timeout_s) as conn:
            now = {c.name: c.spark_type for c in catalog_columns(conn, self.schema_name, self.table)}
        changed = [
            f"{c.name} (new)"
            if c.name not in fields
            else f"{c.name} ({fields[c.name].simpleString()} -> {now[c.name].simpleString()})"
            for c in odd
            if c.name in now and now[c.name] != fields.get(c.name)
        ]
        if changed:
            raise CaptureSchemaChanged(
                f"{self.names.table} changed while its stream ran: {', '.join(changed)}. Run the update again: "
                "its stream reads the new schema and these changes again (nothing was lost: the slot keeps "
                "them)."
            )

    def partitions(self, start: dict, end: dict) -> Sequence[InputPartition]:
        self._check_offset(start)
        start_lsn, end_lsn = int(start["lsn"]), int(end["lsn"])
        parts: list[InputPartition] = []
        if not start.get("snapshot_done") and end.get("snapshot_done"):
            parts.append(
                SnapshotPartition(self.source, self.names.table, start_lsn, self.settings.reconnect_timeout_s)
            )
        if end_lsn > start_lsn:
            rows = self._buffer_from(start_lsn).rows_between(start_lsn, end_lsn)
            if rows:
                parts.append(ChangesPartition(rows, self.schema_))
        return parts

    def read(self, partition: InputPartition) -> Iterator[tuple]:
        if isinstance(partition, ChangesPartition):
            yield from partition.batches()
        elif isinstance(partition, SnapshotPartition):
            yield from read_snapshot(partition, self.schema_)

    def commit(self, end: dict) -> None:
        self._check_offset(end)
        lsn = int(end["lsn"])
        if self._buffer is not None:
            self._buffer.commit(lsn)
        else:  # nothing streamed in this process (a restarted query committing a replayed batch)
            self._run(lambda c: advance_slot(c, self.names, lsn))

    def stop(self) -> None:
        self._close()


def register(spark: Any) -> None:
    """Register the `pgcdc` format with a Spark session (idempotent)."""
    spark.dataSource.register(PgCdcDataSource)
