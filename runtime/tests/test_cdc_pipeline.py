"""AUTO CDC through the whole runtime: pipeline files run by `run_update`, metrics in the event log,
and exactly-once after a process killed between a batch's target commit and its state commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

import cdc_model
from localdlt.runner import run_update

PIPELINE = Path(__file__).parent / "cdc_pipelines" / "customers.py"
SCHEMA = "id INT, name STRING, city STRING, op STRING, seq INT"
BATCHES = [
    [(1, "a", "x", "U", 1), (2, "b", "y", "U", 1), (3, "c", "z", "U", 1)],
    [(1, None, "x2", "U", 3), (2, None, None, "D", 2), (1, "a0", "x0", "U", 2)],
    [(3, "c2", None, "U", 4), (2, "b1", "y", "U", 1), (4, "d", "w", "U", 5)],
]


def _write_source(spark, path: str) -> None:
    for batch in BATCHES:
        spark.createDataFrame(batch, SCHEMA).coalesce(1).write.format("delta").mode("append").save(path)


def _events(batches):
    return [[{"id": r[0], "name": r[1], "city": r[2], "op": r[3], "seq": r[4]} for r in b] for b in batches]


def _expected():
    scd1 = cdc_model.scd1(_events(BATCHES), ["name", "city", "seq"], ignore_null=["name", "city", "seq"])
    scd2 = cdc_model.scd2(_events(BATCHES), ["name", "city"], tracked=["name", "city"])
    return scd1, scd2


def _table(spark, storage: Path, name: str) -> list[tuple]:
    df = spark.read.format("delta").load(str(storage / "tables" / name))
    return sorted((tuple(r) for r in df.collect()), key=repr)


def test_pipeline_file_scd1_and_scd2_with_event_log_metrics(spark, tmp_path):
    source = str(tmp_path / "feed")
    _write_source(spark, source)
    storage = tmp_path / "storage"
    result = run_update([PIPELINE], storage, conf={"cdc.source": source}, spark=spark)
    assert result.ok, result.error
    scd1, scd2 = _expected()
    assert _table(spark, storage, "customers") == scd1
    assert _table(spark, storage, "customers_history") == scd2
    events = spark.read.format("delta").load(str(storage / "system" / "events"))
    progress = (
        events.where((F.col("event_type") == "flow_progress") & (F.col("origin.flow_name") == "customers"))
        .select("details")
        .collect()
    )
    metrics = [json.loads(r["details"])["flow_progress"].get("metrics") or {} for r in progress]
    final = [m for m in metrics if "num_upserted_rows" in m][-1]
    assert final["num_upserted_rows"] >= 4 and final["num_deleted_rows"] == 1


@pytest.mark.slow
def test_killed_between_target_and_state_commit_then_rerun_applies_each_change_once(spark, tmp_path):
    source = str(tmp_path / "feed")
    _write_source(spark, source)
    storage = tmp_path / "storage"
    cmd = [
        str(Path(sys.executable).parent / "localdlt"),
        "run",
        str(PIPELINE),
        "--storage",
        str(storage),
        "--conf",
        f"cdc.source={source}",
        "--workers",
        "1",
        "--quiet",
    ]
    env = {**os.environ, "LOCALDLT_CDC_CRASH_AT": "after-target:1"}
    killed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    env.pop("LOCALDLT_CDC_CRASH_AT")
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    scd1, scd2 = _expected()
    assert _table(spark, storage, "customers") == scd1
    assert _table(spark, storage, "customers_history") == scd2
