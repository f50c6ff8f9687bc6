"""The event log's shape, continuous mode, and the `localdlt run` command (`python -m localdlt`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EVENT_COLUMNS = [
    "id",
    "sequence",
    "origin",
    "timestamp",
    "message",
    "level",
    "maturity_level",
    "error",
    "details",
    "event_type",
]


def test_event_log_has_databricks_columns_and_origin(pipeline):
    pipeline.write("e.py", "@dlt.table\ndef e():\n    return spark.range(2)\n")
    result = pipeline.run()
    events = pipeline.events()
    assert events.columns == EVENT_COLUMNS
    types = [r.event_type for r in events.orderBy("sequence.control_plane_seq_no").collect()]
    assert types[0] == "create_update" and types[-1] == "update_progress"
    assert {"flow_definition", "flow_progress", "update_progress"} <= set(types)
    row = events.where("event_type = 'flow_progress'").first()
    assert row.origin.pipeline_id == result.pipeline_id
    assert row.origin.update_id == result.update_id
    assert row.origin.flow_name == "e" and row.origin.dataset_name == "e"
    for r in events.collect():
        assert list(json.loads(r.details)) == [r.event_type]  # details' single key is the event type
    states = [
        json.loads(r.details)["update_progress"]["state"]
        for r in events.where("event_type = 'update_progress'")
        .orderBy("sequence.control_plane_seq_no")
        .collect()
    ]
    assert states == ["INITIALIZING", "SETTING_UP_TABLES", "RUNNING", "COMPLETED"]
    statuses = [
        json.loads(r.details)["flow_progress"]["status"]
        for r in events.where("event_type = 'flow_progress'")
        .orderBy("sequence.control_plane_seq_no")
        .collect()
    ]
    assert statuses == ["STARTING", "RUNNING", "COMPLETED"]


def test_event_log_collects_no_column_statistics(pipeline):
    """Its commits carry a row count only (collecting min/max per column is most of a short update's first
    commit); the property is set when the log is created and stays through later updates."""
    pipeline.write("e.py", "@dlt.table\ndef e():\n    return spark.range(2)\n")
    pipeline.run()
    pipeline.run()
    log = pipeline.storage / "system" / "events"
    detail = pipeline.spark.sql(f"DESCRIBE DETAIL delta.`{log}`").first()
    assert detail.properties["delta.dataSkippingNumIndexedCols"] == "0"
    adds = [
        json.loads(line)["add"]
        for entry in sorted((log / "_delta_log").glob("*.json"))
        for line in entry.read_text().splitlines()
        if line.startswith('{"add"')
    ]
    assert len(adds) >= 2
    assert all(set(json.loads(a["stats"])) == {"numRecords", "tightBounds"} for a in adds)
    assert pipeline.events().where("event_type = 'create_update'").count() == 2


def test_event_log_is_checkpointed_after_updates_that_work_not_idle_ones(pipeline):
    """A Delta checkpoint of the log costs seconds of cold JVM work: it is written after an update whose
    flows ran (the JVM warm), when 10 commits or more followed the last one, never inside an idle update."""
    from localdlt.eventlog import EventLog, commits_since_checkpoint

    src = pipeline.append_source("src", [(1,)], "id INT")
    pipeline.write(
        "s.py", f"@dlt.table\ndef s():\n    return spark.readStream.format('delta').load('{src}')\n"
    )
    assert pipeline.run().ok
    log = str(pipeline.storage / "system" / "events")
    filler = EventLog(pipeline.spark, log, "p", "filler", "u")
    for _ in range(10):  # commits of earlier updates, as a long series of idle updates leaves them
        filler.emit("update_progress", {"state": "COMPLETED"}, "filler")
        filler.flush()
    behind = commits_since_checkpoint(log)
    assert behind >= 10 and not (Path(log) / "_delta_log" / "_last_checkpoint").exists()

    idle = pipeline.run()
    assert idle.ok and idle.flows["s"].no_op_reason is not None
    assert commits_since_checkpoint(log) > behind  # committed its events, wrote no checkpoint

    pipeline.append_source("src", [(2,)], "id INT")
    worked = pipeline.run()
    assert worked.ok and worked.flows["s"].no_op_reason is None
    assert commits_since_checkpoint(log) == 0
    assert not filler.checkpoint_if_due()  # nothing to do right after one
    assert pipeline.events().where("event_type = 'create_update'").count() == 3  # the log reads whole


def test_spark_jobs_are_named_after_their_flow(pipeline):
    """Each flow's Spark jobs carry its name as their job group (the Spark UI's jobs page, Spark's event log
    for profiling)."""
    pipeline.write(
        "g.py",
        "@dlt.table\ndef g_one():\n    return spark.range(3)\n\n"
        "@dlt.table\ndef g_two():\n    return dlt.read('g_one').where('id > 0')\n",
    )
    pipeline.run()
    tracker = pipeline.spark.sparkContext.statusTracker()
    for flow in ("g_one", "g_two"):
        jobs = tracker.getJobIdsForGroup(flow)
        assert jobs, flow
        assert all(tracker.getJobInfo(j).status == "SUCCEEDED" for j in jobs)
    before = len(tracker.getJobIdsForGroup("g_one"))
    pipeline.spark.range(1).count()  # jobs outside a flow are not counted against it
    assert len(tracker.getJobIdsForGroup("g_one")) == before


def test_continuous_mode_keeps_processing_until_stopped(pipeline):
    src = pipeline.append_source("ticks", [(0,)], "n INT")
    pipeline.write(
        "c.py",
        f"""
        @dlt.table
        def ticks():
            return spark.readStream.format("delta").load("{src}")
        """,
    )
    pipeline.run()  # create the table; the continuous run below must pick up rows added while it runs

    def landed() -> int:
        return pipeline.table("ticks").count()

    def feed() -> None:
        """Once the continuous flow runs: add a row at a time, each after the last one landed; then stop
        the update as a user does (Ctrl-C). Waits are bounded; a stalled flow fails the asserts below."""
        deadline = time.monotonic() + 150
        while "ticks" not in {q.name for q in pipeline.spark.streams.active} and time.monotonic() < deadline:
            time.sleep(0.2)
        for n in range(1, 4):
            pipeline.append_source("ticks", [(n,)], "n INT")
            while landed() < n + 1 and time.monotonic() < deadline:
                time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)

    feeder = threading.Thread(target=feed)
    feeder.start()
    result = pipeline.run(continuous=True, max_seconds=180, trigger_interval_seconds=0.5)
    feeder.join()
    assert result.ok, result.error
    assert result.flows["ticks"].status == "STOPPED"
    assert pipeline.rows("ticks") == [(0,), (1,), (2,), (3,)]
    assert result.flows["ticks"].metrics.num_output_rows == 3
    # while it ran, the flow reported its progress; its events add up to its total (nothing twice)
    progress = (
        pipeline.events()
        .where(f"event_type = 'flow_progress' AND origin.update_id = '{result.update_id}'")
        .selectExpr(
            "get_json_object(details, '$.flow_progress.status') AS status",
            "CAST(get_json_object(details, '$.flow_progress.metrics.num_output_rows') AS INT) AS rows",
        )
        .where("rows IS NOT NULL")
        .collect()
    )
    assert "RUNNING" in {p.status for p in progress}, progress
    assert sum(p.rows for p in progress) == 3, progress


def _cli(
    *args: str, timeout: int = 240, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if k != "LOCALDLT_JIT"},
        "PYSPARK_PYTHON": sys.executable,
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "localdlt", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


JVM_FLAGS_TABLE = """
@dlt.table
def jvm_flags():
    bean = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    return spark.createDataFrame([(str(a),) for a in bean.getInputArguments()], "arg STRING")
"""


def test_cli_runs_an_update_and_reports_failure_with_exit_status(spark, tmp_path):
    """Also: `localdlt run` starts its JVM with the quick JIT (C1 only) unless told `--jit full`."""
    good = tmp_path / "good.py"
    good.write_text("import dlt\n\n@dlt.table\ndef nums():\n    return spark.range(4)\n" + JVM_FLAGS_TABLE)

    def flags():
        return {
            r.arg for r in spark.read.format("delta").load(str(storage / "tables" / "jvm_flags")).collect()
        }

    bad = tmp_path / "bad.py"
    bad.write_text(
        "import dlt\n\n@dlt.table\n@dlt.expect_or_fail('small', 'id < 2')\ndef big():\n    return spark.range(4)\n"
    )
    storage = tmp_path / "storage"
    ok = _cli("run", str(good), "--storage", str(storage))
    assert ok.returncode == 0, ok.stderr
    assert (
        "nums" in ok.stdout and "RUNNING" in ok.stdout and "COMPLETED" in ok.stdout and "4 rows" in ok.stdout
    )
    assert (storage / "tables" / "nums" / "_delta_log").is_dir()
    assert (storage / "system" / "events" / "_delta_log").is_dir()
    assert "(JIT quick)" in ok.stdout and "-XX:TieredStopAtLevel=1" in flags()
    # a failing task: its Java stack traces go to the Spark log, the console gets the runtime's summary
    cast = tmp_path / "cast.py"
    cast.write_text(
        "import dlt\n\n@dlt.table\ndef casted():\n    return spark.sql(\"SELECT CAST('x' AS INT) v\")\n"
    )
    log = tmp_path / "spark.log"
    failed = _cli(
        *(
            "run",
            str(good),
            str(bad),
            str(cast),
            "--storage",
            str(storage),
            "--jit",
            "full",
            "--full-refresh",
        ),
        env={"LOCALDLT_SPARK_LOG": str(log)},
    )
    assert failed.returncode == 1
    assert "FAILED" in failed.stdout and "small" in failed.stderr and "'big'" in failed.stderr
    assert "'casted'" in failed.stderr and "CAST_INVALID_INPUT" in failed.stderr
    console = failed.stdout + failed.stderr
    assert "\tat org.apache" not in console and "\tat java." not in console
    assert "\tat org.apache.spark" in log.read_text()
    assert "(JIT full)" in failed.stdout and "-XX:TieredStopAtLevel=1" not in flags()


def test_jit_modes_are_checked_before_the_jvm_starts(monkeypatch):
    from localdlt.errors import PipelineError
    from localdlt.session import jit_mode

    monkeypatch.delenv("LOCALDLT_JIT", raising=False)
    assert jit_mode() == "full" and jit_mode(default="quick") == "quick" and jit_mode("QUICK") == "quick"
    monkeypatch.setenv("LOCALDLT_JIT", "quick")
    assert jit_mode() == "quick" and jit_mode("full") == "full"  # asked for beats the environment
    monkeypatch.setenv("LOCALDLT_JIT", "turbo")
    with pytest.raises(PipelineError, match=r"'turbo' \(\$LOCALDLT_JIT\) is not one of quick, full"):
        jit_mode()
    out = _cli("run", "x.py", "--storage", "unused", env={"LOCALDLT_JIT": "turbo"}, timeout=60)
    assert out.returncode == 2 and "LOCALDLT_JIT" in out.stderr and "Traceback" not in out.stderr


def test_cli_help_describes_every_option():
    out = _cli("run", "--help", timeout=60)
    assert out.returncode == 0
    for option in (
        "--storage",
        "--conf",
        "--full-refresh",
        "--full-refresh-tables",
        "--continuous",
        "--max-seconds",
    ):
        assert option in out.stdout
