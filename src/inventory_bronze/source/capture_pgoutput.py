"""Decoder of PostgreSQL's pgoutput logical replication messages (protocol version 1, text values).

`Decoder` (one message at a time, as the replication stream sends them) and `decode_transactions` (a
sequence of them) turn pgoutput messages into committed transactions in commit order, each with its
changes in transaction order. Values stay as the server's text output (`None` for NULL, `UNCHANGED` for
an unchanged out-of-line TOAST value); typing them is `capture_types`' job.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from inventory_bronze.source.capture_errors import DecodeError

PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


class _Unchanged:
    """Marker of a TOASTed value the update did not change (pgoutput sends 'u' without the value)."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()


@dataclass(frozen=True)
class RelationColumn:
    name: str
    type_oid: int
    typmod: int
    is_key: bool


@dataclass(frozen=True)
class Relation:
    oid: int
    namespace: str
    name: str
    replica_identity: str
    columns: tuple[RelationColumn, ...]

    @property
    def qualified(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass
class Change:
    """One row change. `op` is insert/update/delete/truncate; `new`/`old` map column name -> text value."""

    op: str
    relation: Relation
    position: int
    new: dict[str, object] | None = None
    old: dict[str, object] | None = None
    truncated: tuple[Relation, ...] = ()


@dataclass
class Transaction:
    xid: int
    commit_lsn: int
    commit_ts: dt.datetime
    end_lsn: int = 0
    changes: list[Change] = field(default_factory=list)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> str:
        value = chr(self.data[self.pos])
        self.pos += 1
        return value

    def int8(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def int16(self) -> int:
        (value,) = struct.unpack_from("!h", self.data, self.pos)
        self.pos += 2
        return value

    def int32(self) -> int:
        (value,) = struct.unpack_from("!i", self.data, self.pos)
        self.pos += 4
        return value

    def uint32(self) -> int:
        (value,) = struct.unpack_from("!I", self.data, self.pos)
        self.pos += 4
        return value

    def int64(self) -> int:
        (value,) = struct.unpack_from("!q", self.data, self.pos)
        self.pos += 8
        return value

    def uint64(self) -> int:
        (value,) = struct.unpack_from("!Q", self.data, self.pos)
        self.pos += 8
        return value

    def string(self) -> str:
        end = self.data.index(0, self.pos)
        value = self.data[self.pos : end].decode()
        self.pos = end + 1
        return value

    def raw(self, length: int) -> bytes:
        value = self.data[self.pos : self.pos + length]
        self.pos += length
        return value


def pg_timestamp(micros: int) -> dt.datetime:
    """A PostgreSQL TimestampTz (microseconds since 2000-01-01 UTC) as an aware UTC datetime."""
    return PG_EPOCH + dt.timedelta(microseconds=micros)


def _tuple(reader: _Reader, relation: Relation) -> dict[str, object]:
    count = reader.int16()
    if count > len(relation.columns):
        raise DecodeError(
            f"pgoutput sent {count} columns for {relation.qualified}, its relation message has "
            f"{len(relation.columns)}: restart the stream so the relation is described again."
        )
    values: dict[str, object] = {}
    for index in range(count):
        kind = reader.byte()
        name = relation.columns[index].name
        if kind == "n":
            values[name] = None
        elif kind == "u":
            values[name] = UNCHANGED
        elif kind == "t":
            values[name] = reader.raw(reader.int32()).decode()
        elif kind == "b":
            raise DecodeError(f"Column {relation.qualified}.{name} came in binary format; use text output.")
        else:
            raise DecodeError(f"Unknown tuple value kind {kind!r} for {relation.qualified}.{name}.")
    return values


def decode_transactions(
    messages: Iterable[bytes], relations: dict[int, Relation] | None = None
) -> Iterator[Transaction]:
    """Committed transactions from pgoutput messages, in commit order. `relations` caches Relation
    messages across calls (pgoutput sends each relation once per decoding session)."""
    decoder = Decoder(relations)
    for message in messages:
        txn = decoder.feed(message)
        if txn is not None:
            yield txn


class Decoder:
    """pgoutput messages in, one at a time; a committed Transaction out when its commit arrives."""

    def __init__(self, relations: dict[int, Relation] | None = None) -> None:
        self.relations = relations if relations is not None else {}
        self.current: Transaction | None = None

    @property
    def in_transaction(self) -> bool:
        return self.current is not None

    def feed(self, message: bytes) -> Transaction | None:
        reader = _Reader(bytes(message))
        kind = reader.byte()
        if kind == "B":
            final_lsn, ts, xid = reader.uint64(), reader.int64(), reader.uint32()
            self.current = Transaction(xid=xid, commit_lsn=final_lsn, commit_ts=pg_timestamp(ts))
        elif kind == "C":
            reader.int8()
            commit_lsn, end_lsn, ts = reader.uint64(), reader.uint64(), reader.int64()
            done = self.current
            if done is None:
                raise DecodeError(f"pgoutput sent a commit at LSN {lsn_text(commit_lsn)} without a begin.")
            done.commit_lsn, done.end_lsn, done.commit_ts = commit_lsn, end_lsn, pg_timestamp(ts)
            self.current = None
            return done
        elif kind == "R":
            oid = reader.uint32()
            namespace, name = reader.string(), reader.string()
            identity = reader.byte()
            columns = []
            for _ in range(reader.int16()):
                flags = reader.int8()
                col_name = reader.string()
                type_oid, typmod = reader.uint32(), reader.int32()
                columns.append(RelationColumn(col_name, type_oid, typmod, bool(flags & 1)))
            self.relations[oid] = Relation(oid, namespace, name, identity, tuple(columns))
        elif kind in ("I", "U", "D", "T"):
            if self.current is None:
                raise DecodeError(f"pgoutput sent a {kind!r} change outside a transaction.")
            self.current.changes.append(_change(kind, reader, self.relations, len(self.current.changes)))
        elif kind not in ("Y", "O", "M"):  # type, origin and logical messages carry nothing the capture needs
            raise DecodeError(f"Unknown pgoutput message {kind!r}: is the slot's plugin pgoutput (proto 1)?")
        return None


def _relation(rels: dict[int, Relation], oid: int) -> Relation:
    try:
        return rels[oid]
    except KeyError:
        raise DecodeError(
            f"pgoutput referenced relation OID {oid} before describing it: restart the stream."
        ) from None


def _change(kind: str, reader: _Reader, rels: dict[int, Relation], position: int) -> Change:
    if kind == "T":
        count = reader.int32()
        reader.int8()  # options: cascade / restart identity
        relations = tuple(_relation(rels, reader.uint32()) for _ in range(count))
        return Change("truncate", relations[0], position, truncated=relations)
    relation = _relation(rels, reader.uint32())
    if kind == "I":
        if reader.byte() != "N":
            raise DecodeError(f"Malformed insert message for {relation.qualified}.")
        return Change("insert", relation, position, new=_tuple(reader, relation))
    if kind == "D":
        marker = reader.byte()
        if marker not in ("K", "O"):
            raise DecodeError(f"Malformed delete message for {relation.qualified}.")
        return Change("delete", relation, position, old=_tuple(reader, relation))
    marker = reader.byte()
    old = None
    if marker in ("K", "O"):
        old = _tuple(reader, relation)
        marker = reader.byte()
    if marker != "N":
        raise DecodeError(f"Malformed update message for {relation.qualified}.")
    return Change("update", relation, position, new=_tuple(reader, relation), old=old)


def lsn_text(lsn: int) -> str:
    """An LSN as PostgreSQL writes it (`16/B374D848`)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def lsn_int(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)
