"""A plain-Python model of AUTO CDC's documented semantics, to check the runtime against.

Events: dicts {"id": key, "seq": int, "op": "U" | "D", <value columns>}; batches arrive in order.

SCD type 1: within a batch, events apply in sequence order; an event whose sequence is not higher than
what the target reflects for its key (its last upsert or delete -- the tombstone) is ignored; a delete
removes the row; an upsert replaces it, except that with ignore-null columns a NULL keeps the row's value.

SCD type 2: the versions of a key are what replaying ALL its events (whatever batch brought them) in
sequence order gives: an upsert opens a version when there is none, closes the current one and opens a new
one when a tracked column changes, updates the current one in place otherwise; a delete closes the
current version; ignore-null columns keep the current version's value where the update has NULL.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def scd1(
    batches: Iterable[list[dict[str, Any]]], values: list[str], ignore_null: Iterable[str] = ()
) -> list[tuple]:
    ignore = set(ignore_null)
    seen: dict[Any, int] = {}  # key -> sequence the target reflects
    rows: dict[Any, dict[str, Any]] = {}
    for batch in batches:
        for e in sorted(batch, key=lambda e: e["seq"]):
            k = e["id"]
            if k in seen and e["seq"] <= seen[k]:
                continue
            seen[k] = e["seq"]
            if e["op"] == "D":
                rows.pop(k, None)
                continue
            new = {v: e[v] for v in values}
            if k in rows:
                for v in ignore:
                    if new[v] is None:
                        new[v] = rows[k][v]
            rows[k] = new
    return sorted(((k, *[r[v] for v in values]) for k, r in rows.items()), key=repr)


def scd2(
    batches: Iterable[list[dict[str, Any]]],
    values: list[str],
    tracked: list[str],
    ignore_null: Iterable[str] = (),
) -> list[tuple]:
    ignore = set(ignore_null)
    by_key: dict[Any, dict[tuple, dict[str, Any]]] = {}
    for batch in batches:
        for e in batch:
            ident = (e["seq"], e["op"], *[e[v] for v in values])
            by_key.setdefault(e["id"], {})[ident] = e
    out: list[tuple] = []
    for k, events in by_key.items():
        versions: list[dict[str, Any]] = []
        cur: dict[str, Any] | None = None
        for e in sorted(events.values(), key=lambda e: (e["seq"], e["op"] == "D")):
            if e["op"] == "D":
                if cur is not None:
                    cur["__END_AT"] = e["seq"]
                    cur = None
                continue
            new = {v: e[v] for v in values}
            if cur is not None:
                for v in ignore:
                    if new[v] is None:
                        new[v] = cur[v]
            if cur is not None and all(new[t] == cur[t] for t in tracked):
                cur.update(new)
                continue
            if cur is not None:
                cur["__END_AT"] = e["seq"]
            cur = {**new, "__START_AT": e["seq"], "__END_AT": None}
            versions.append(cur)
        for ver in versions:
            if ver["__END_AT"] is not None and ver["__END_AT"] == ver["__START_AT"]:
                continue
            out.append((k, *[ver[v] for v in values], ver["__START_AT"], ver["__END_AT"]))
    return sorted(out, key=repr)
