"""One replication slot read through PostgreSQL's streaming replication protocol (START_REPLICATION):
the server decodes each transaction once and sends it as it commits; confirmations go back as standby
status updates. A background thread keeps the connection, decodes pgoutput into transactions and answers
the server's keepalives, so a reader finds the transactions already there when it asks.

    feed = SlotFeed(source, names, start_lsn, on_transaction=..., max_buffered=200_000)
    feed.position()          # every transaction committed before it has been received
    feed.confirm(lsn)        # the consumer keeps everything before `lsn`: the server may recycle it
    feed.close()

Positions follow the slot's semantics: `START_REPLICATION ... LOGICAL L` sends the transactions whose
commit LSN is >= max(L, the slot's confirmed position), so starting again at the consumer's committed
offset re-sends exactly what it has not committed.
"""

from __future__ import annotations

import select
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from inventory_bronze.secrets import SourceConnection
from inventory_bronze.source.capture_errors import CaptureError, SlotInvalidatedError
from inventory_bronze.source.capture_pgoutput import Decoder, Transaction, lsn_text
from inventory_bronze.source.capture_slot import SESSION_OPTIONS, CaptureNames, recovery_command

#: microseconds from the Unix epoch to PostgreSQL's (2000-01-01)
_PG_EPOCH_US = 946_684_800_000_000
#: a status update at least this often (the server drops a silent client after wal_sender_timeout, 60 s)
STATUS_EVERY_S = 10.0


def _now_pg_us() -> int:
    return int(time.time() * 1_000_000) - _PG_EPOCH_US


def status_update(received: int, flushed: int, reply: bool = False) -> bytes:
    """A standby status update ('r'): written/flushed/applied positions, the clock, reply requested."""
    return b"r" + struct.pack("!QQQqB", received, flushed, flushed, _now_pg_us(), 1 if reply else 0)


def start_command(names: CaptureNames, lsn: int) -> bytes:
    slot = names.slot.replace('"', '""')
    publication = names.publication.replace("'", "''").replace('"', '""')
    return (
        f'START_REPLICATION SLOT "{slot}" LOGICAL {lsn_text(lsn)} '
        f"(proto_version '1', publication_names '\"{publication}\"')"
    ).encode()


class SlotFeed:
    """The transactions of one slot from `start_lsn` on, delivered to `on_transaction` (called on the
    feed's thread) in commit order. Reading pauses while `backlog()` reports more than `max_buffered`
    (the consumer's undelivered rows); the server then waits (TCP), status updates keep it patient."""

    def __init__(
        self,
        source: SourceConnection,
        names: CaptureNames,
        start_lsn: int,
        on_transaction: Callable[[Transaction], None],
        backlog: Callable[[], int],
        max_buffered: int,
        reconnect_timeout_s: float,
    ) -> None:
        self.source = source
        self.names = names
        self._on_transaction = on_transaction
        self._backlog = backlog
        self.max_buffered = max_buffered
        self.reconnect_timeout_s = reconnect_timeout_s
        self._cond = threading.Condition()
        self._received = start_lsn  # every transaction committed before it was handed on
        self._confirmed = start_lsn
        self._error: BaseException | None = None
        self._down_since: float | None = None  # when the connection was lost, while it is down
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pgcdc-{names.slot}", daemon=True)
        self._thread.start()

    # -- the consumer's side --

    def position(self) -> int:
        """Every transaction committed before this LSN has been handed on."""
        with self._cond:
            self._raise_error()
            return self._received

    def wait_for(self, lsn: int, timeout_s: float) -> bool:
        """Wait until position() >= lsn (asking the server for its position); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._received < lsn:
                self._raise_error()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.set()
                self._cond.wait(min(remaining, 0.2))
            return True

    def confirm(self, lsn: int) -> None:
        """The consumer keeps every transaction committed before `lsn`: tell the server now."""
        with self._cond:
            if lsn > self._confirmed:
                self._confirmed = lsn
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    # -- the feed's thread --

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                self._stream()
                return
            except (psycopg.OperationalError, _ConnectionLost) as err:
                # a restarting server or a dropped connection: start again where the consumer is, for
                # reconnect_timeout_s since the connection was last up
                if self._down_since is None:
                    self._down_since = time.monotonic()
                if time.monotonic() - self._down_since > self.reconnect_timeout_s:
                    self._fail(
                        SlotInvalidatedError(
                            f"Lost the replication connection while capturing {self.names.table} for "
                            f"{self.reconnect_timeout_s:.0f} s ({_first_line(err)}): restart the query once "
                            f"the server is back; nothing is lost (the slot keeps the WAL)."
                        )
                    )
                    return
                self._stop.wait(0.5)
            except BaseException as err:  # noqa: BLE001 - handed to the consumer, who raises it
                self._fail(err)
                return

    def _fail(self, err: BaseException) -> None:
        with self._cond:
            self._error = err
            self._cond.notify_all()

    def _connect(self) -> Any:
        from psycopg import pq

        from inventory_bronze.source.capture_connection import APPLICATION_NAME, open_connection

        # the slot must be there and usable, and nobody may have confirmed past the consumer
        with open_connection(self.source, retry_for_s=self.reconnect_timeout_s) as conn:
            from inventory_bronze.source.capture_slot import require_usable_slot

            state = require_usable_slot(conn, self.names)
        confirmed = int(state.confirmed_flush_lsn or 0)
        with self._cond:
            start = self._received
        if confirmed > start:
            raise SlotInvalidatedError(
                f"Replication slot '{self.names.slot}' is confirmed up to {lsn_text(confirmed)}, past this "
                f"stream's position {lsn_text(start)}: another consumer advanced it and changes of "
                f"{self.names.table} in between are gone. Recover: {recovery_command(self.names)}."
            )
        info = self.source.conninfo(
            application_name=APPLICATION_NAME, replication="database", options=SESSION_OPTIONS
        )
        pgconn = pq.PGconn.connect(info.encode())
        if pgconn.status != pq.ConnStatus.OK:
            message = pgconn.error_message
            pgconn.finish()
            raise _ConnectionLost(message)
        pgconn.send_query(start_command(self.names, start))
        result = pgconn.get_result()
        if result is None or result.status != pq.ExecStatus.COPY_BOTH:
            raw = result.error_message if result is not None else pgconn.error_message
            message = raw.decode(errors="replace")
            pgconn.finish()
            if "is active for PID" in message:  # the previous consumer's walsender is still going away
                raise _ConnectionLost(message)
            raise CaptureError(f"Cannot stream replication slot '{self.names.slot}': {message.strip()}")
        pgconn.nonblocking = 1
        return pgconn, start

    def _stream(self) -> None:
        pgconn, start = self._connect()
        self._down_since = None
        decoder = Decoder()
        sent_status, sent_confirmed = 0.0, -1
        try:
            while not self._stop.is_set():
                with self._cond:
                    confirmed, received = self._confirmed, self._received
                wake = self._wake.is_set()
                self._wake.clear()
                now = time.monotonic()
                if wake or confirmed != sent_confirmed or now - sent_status >= STATUS_EVERY_S:
                    # a wake-up (a consumer waiting for a position) asks the server for its position too
                    self._send(pgconn, status_update(received, confirmed, reply=wake))
                    sent_status, sent_confirmed = now, confirmed
                if self._backlog() >= self.max_buffered:
                    self._wake.wait(1.0)
                    continue
                while (
                    not self._wake.is_set()
                    and self._backlog() < self.max_buffered
                    and self._read(pgconn, decoder, start)
                ):
                    pass  # drain what is waiting, then status and backlog again
                if not self._wake.is_set():
                    select.select([pgconn.socket], [], [], 0.2)
                    pgconn.consume_input()
        finally:
            self._close(pgconn)

    def _read(self, pgconn: Any, decoder: Decoder, start: int) -> bool:
        """Handle one message of the stream; False when none is waiting."""
        nbytes, data = pgconn.get_copy_data(1)
        if nbytes == 0:
            return False
        if nbytes < 0:
            raise _ConnectionLost(pgconn.error_message or b"the server ended the replication stream")
        kind = data[0]
        if kind == ord("w"):  # XLogData: start, end, clock, then one pgoutput message
            txn = decoder.feed(bytes(data[25:]))
            if txn is not None:
                if txn.commit_lsn >= start:
                    self._on_transaction(txn)
                self._advance(txn.end_lsn)
        elif kind == ord("k"):  # keepalive: the server's position, and whether it wants an answer now
            wal_end, _clock, reply = struct.unpack_from("!QqB", data, 1)
            if not decoder.in_transaction:
                # every transaction committed before the server's position was sent before this message
                self._advance(wal_end)
            if reply:
                self._wake.set()
        return True

    def _advance(self, lsn: int) -> None:
        with self._cond:
            if lsn > self._received:
                self._received = lsn
                self._cond.notify_all()

    def _send(self, pgconn: Any, message: bytes) -> None:
        if pgconn.put_copy_data(message) != 1:
            raise _ConnectionLost(pgconn.error_message)
        while pgconn.flush() == 1:
            select.select([], [pgconn.socket], [], 1.0)

    def _close(self, pgconn: Any) -> None:
        try:
            with self._cond:
                confirmed, received = self._confirmed, self._received
            self._send(pgconn, status_update(received, confirmed))
        except Exception:
            pass
        pgconn.finish()


class _ConnectionLost(Exception):
    def __init__(self, message: bytes | str) -> None:
        text = message.decode(errors="replace") if isinstance(message, bytes) else message
        super().__init__(text.strip() or "connection lost")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


#: with nothing to deliver, a batch still moves the stream this far past the other tables' WAL (so the slot
#: does not hold it), rather than an empty batch per trigger
QUIET_ADVANCE_BYTES = 16 * 1024 * 1024


class ChangeBuffer:
    """The rows of the slot's transactions from `start_lsn` on, as `rows_of` builds them (on the feed's
    thread), kept until the consumer commits past them. Offsets are positions: a batch [start, end) holds
    the transactions whose commit LSN lies in it."""

    def __init__(
        self,
        source: SourceConnection,
        names: CaptureNames,
        start_lsn: int,
        rows_of: Callable[[Transaction], list[tuple]],
        *,
        max_rows: int,
        reconnect_timeout_s: float,
    ) -> None:
        self.names = names
        self.start_lsn = start_lsn
        self.max_rows = max_rows
        self.reconnect_timeout_s = reconnect_timeout_s
        self._rows_of = rows_of
        self._lock = threading.Lock()
        self._txns: deque[tuple[int, int, list[tuple]]] = deque()  # (commit LSN, end LSN, rows)
        self._rows = 0
        self.feed = SlotFeed(
            source,
            names,
            start_lsn,
            on_transaction=self._add,
            backlog=lambda: self._rows,
            max_buffered=max_rows,
            reconnect_timeout_s=reconnect_timeout_s,
        )

    def _add(self, txn: Transaction) -> None:
        rows = self._rows_of(txn)
        if rows:
            with self._lock:
                self._txns.append((txn.commit_lsn, txn.end_lsn, rows))
                self._rows += len(rows)

    def wait_until(self, lsn: int, timeout_s: float) -> None:
        """Until every transaction committed before `lsn` is here, or the buffer is full."""
        deadline = time.monotonic() + max(timeout_s, 60.0)
        while not self.feed.wait_for(lsn, 0.5):
            if self._rows >= self.max_rows:
                return
            if time.monotonic() > deadline:
                raise CaptureError(
                    f"The server did not send the changes of {self.names.table} up to {lsn_text(lsn)} "
                    f"within {max(timeout_s, 60.0):.0f} s (slot '{self.names.slot}'): check the server's "
                    f"log and `inventory-bronze capture status`."
                )

    def end_of_next_batch(self, start_lsn: int, max_rows: int | None, stop_at: int | None) -> int:
        """Where a batch starting at `start_lsn` ends: whole transactions up to about `max_rows` rows
        (at least one), else the stream's position when everything before it is taken."""
        position = self.feed.position()
        if stop_at is not None:
            position = min(position, stop_at)
        taken, end, everything = 0, start_lsn, True
        with self._lock:
            for commit_lsn, end_lsn, rows in self._txns:
                if commit_lsn < start_lsn:
                    continue
                if commit_lsn >= position:
                    break
                if max_rows is not None and taken and taken + len(rows) > max_rows:
                    everything = False
                    break
                taken += len(rows)
                end = end_lsn
        if everything and position > end and (taken or position - start_lsn >= QUIET_ADVANCE_BYTES):
            end = position
        return end

    def rows_between(self, start_lsn: int, end_lsn: int) -> list[tuple]:
        """The rows of the transactions committed in [start_lsn, end_lsn), in order."""
        if not self.feed.wait_for(end_lsn, max(self.reconnect_timeout_s, 60.0)):
            raise SlotInvalidatedError(
                f"Cannot re-read {self.names.table} changes up to {lsn_text(end_lsn)} from slot "
                f"'{self.names.slot}': the server did not send them. Recover: {recovery_command(self.names)}."
            )
        with self._lock:
            return [
                row
                for commit_lsn, _end, rows in self._txns
                if start_lsn <= commit_lsn < end_lsn
                for row in rows
            ]

    def commit(self, lsn: int) -> None:
        """The consumer committed everything before `lsn`: drop it here, confirm it to the server."""
        with self._lock:
            while self._txns and self._txns[0][0] < lsn:
                self._rows -= len(self._txns.popleft()[2])
        self.start_lsn = max(self.start_lsn, lsn)
        self.feed.confirm(lsn)

    def close(self) -> None:
        self.feed.close()
