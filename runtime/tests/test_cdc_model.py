"""Randomized: random change streams (out of order, duplicates, several batches and updates) applied by
the runtime equal the plain-Python model of the documented semantics, for SCD type 1 and type 2."""

from __future__ import annotations

import random

import pytest

import cdc_model
from cdc_harness import CdcHarness

SCHEMA = "id INT, a STRING, b INT, op STRING, seq INT"
VALUES = ["a", "b"]


def random_batches(seed: int, n_events: int = 200, n_keys: int = 8, n_batches: int = 5) -> list[list[dict]]:
    rnd = random.Random(seed)
    seqs = {k: rnd.sample(range(1, 10_000), n_events) for k in range(n_keys)}
    events = []
    for i in range(n_events):
        k = rnd.randrange(n_keys)
        op = "D" if rnd.random() < 0.2 else "U"
        a = rnd.choice(["x", "y", None]) if op == "U" else None
        b = rnd.choice([1, 2, None]) if op == "U" else None
        events.append({"id": k, "a": a, "b": b, "op": op, "seq": seqs[k][i]})
    # mostly ascending sequence with some events arriving late (out of order)
    events.sort(key=lambda e: e["seq"] + rnd.choice([0, 0, 0, rnd.randrange(5000)]))
    batches = [[] for _ in range(n_batches)]
    for i, e in enumerate(events):
        batches[min(n_batches - 1, i * n_batches // n_events)].append(e)
    for _ in range(n_events // 10):  # duplicates, in the same or a later batch
        src = rnd.randrange(n_batches)
        e = rnd.choice(batches[src])
        batches[rnd.randrange(src, n_batches)].append(dict(e))
    for b in batches:
        rnd.shuffle(b)
    return batches


def _rows(batch: list[dict]) -> list[tuple]:
    return [(e["id"], e["a"], e["b"], e["op"], e["seq"]) for e in batch]


def _apply(h: CdcHarness, flow, batches: list[list[dict]]) -> None:
    # two updates: the first three batches, then the rest (state carries over between updates)
    for i, batch in enumerate(batches):
        h.append(_rows(batch))
        if i == 2:
            h.run(flow)
    h.run(flow)


@pytest.mark.parametrize("seed", [7])
def test_scd1_matches_the_model(spark, tmp_path, seed):
    batches = random_batches(seed)
    h = CdcHarness(spark, tmp_path, SCHEMA)
    f = h.flow(
        keys=["id"],
        sequence_by="seq",
        apply_as_deletes="op = 'D'",
        except_column_list=["op", "seq"],
        ignore_null_updates_column_list=["a"],
    )
    _apply(h, f, batches)
    assert h.rows() == cdc_model.scd1(batches, VALUES, ignore_null=["a"])


@pytest.mark.parametrize("seed", [11])
def test_scd2_matches_the_model(spark, tmp_path, seed):
    batches = random_batches(seed)
    h = CdcHarness(spark, tmp_path, SCHEMA)
    f = h.flow(
        keys=["id"],
        sequence_by="seq",
        apply_as_deletes="op = 'D'",
        except_column_list=["op", "seq"],
        stored_as_scd_type=2,
        track_history_except_column_list=["b"],
        ignore_null_updates_column_list=["a"],
    )
    _apply(h, f, batches)
    assert h.rows() == cdc_model.scd2(batches, VALUES, tracked=["a"], ignore_null=["a"])
