"""Log-based change capture against the real local PostgreSQL and the shared Spark session: every
operation in commit order with its values and types, unchanged TOAST, snapshot + stream consistency under
concurrent changes, exact resumption after a query restart and after a server restart, dropped slots,
REPLICA IDENTITY checks and the capture commands."""

from __future__ import annotations

import datetime as dt
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from inventory_bronze.source.capture_slot import CaptureNames, drop_capture, setup_capture, slot_state

TOAST_TEXT = "t" * 6000


@pytest.fixture(scope="module")
def cdc(spark: Any) -> Any:
    from inventory_bronze.source.capture import register

    register(spark)
    return spark


@pytest.fixture
def capture_table(pg_server: Any) -> Iterator[Callable[..., CaptureNames]]:
    """Create a table in schema tests, set up its capture; drop both afterwards."""
    made: list[CaptureNames] = []

    def make(name: str, columns: str, *, setup: bool = True, rows_sql: str | None = None) -> CaptureNames:
        names = CaptureNames.for_table(f"tests.{name}")
        with pg_server.connect(autocommit=True) as conn:
            drop_capture(conn, names)
            conn.execute(f"DROP TABLE IF EXISTS tests.{name}")
            conn.execute(f"CREATE TABLE tests.{name} ({columns})")
            if rows_sql:
                conn.execute(rows_sql)
            if setup:
                setup_capture(conn, names)
        made.append(names)
        return names

    yield make
    with pg_server.connect(autocommit=True) as conn:
        for names in made:
            for _ in range(20):  # a stopping query may still hold the slot for a moment
                try:
                    drop_capture(conn, names)
                    break
                except Exception:
                    time.sleep(0.5)
            conn.execute(f"DROP TABLE IF EXISTS {names.table}")


def run_available_now(spark: Any, table: str, checkpoint: Path, sink: Path, **options: str) -> list[dict]:
    """One availableNow run of the stream into a Delta folder; returns the rows the run added."""
    before = spark.read.format("delta").load(str(sink)).count() if (sink / "_delta_log").exists() else 0
    reader = spark.readStream.format("pgcdc").option("table", table).option("secretsFile", secrets_file())
    for key, value in options.items():
        reader = reader.option(key, value)
    query = (
        reader.load()
        .writeStream.format("delta")
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start(str(sink))
    )
    query.awaitTermination(180)
    if query.exception() is not None:
        raise query.exception()
    rows = [r.asDict(recursive=True) for r in spark.read.format("delta").load(str(sink)).collect()]
    rows.sort(key=lambda r: r["_seq"])
    assert len(rows) >= before
    return rows


def foreach_batch_query(spark: Any, table: str, collect: Callable, checkpoint: Path, **trigger: Any) -> Any:
    """A started stream of the table's changes (no snapshot) into `collect(df, batch_id)`."""
    return (
        spark.readStream.format("pgcdc")
        .option("table", table)
        .option("secretsFile", secrets_file())
        .option("snapshot", "false")
        .load()
        .writeStream.foreachBatch(collect)
        .option("checkpointLocation", str(checkpoint))
        .trigger(**trigger)
        .start()
    )


def secrets_file() -> str:
    """Spark's Python workers started before the test fixtures set the environment: name the file."""
    import os

    return os.environ["INVENTORY_BRONZE_SECRETS_FILE"]


def apply_changes(rows: list[dict], key: str, columns: list[str]) -> dict[Any, dict]:
    """What a keyed apply_changes consumer ends with: order by _seq, upsert/delete/truncate, keep the old
    value of the columns listed in _unchanged_cols."""
    state: dict[Any, dict] = {}
    for row in sorted(rows, key=lambda r: r["_seq"]):
        op = row["_op"]
        if op == "truncate":
            state.clear()
        elif op == "delete":
            state.pop(row[key], None)
        else:
            old = state.get(row[key], {})
            new = {c: row[c] for c in columns}
            for c in row["_unchanged_cols"]:
                new[c] = old.get(c)
            state[row[key]] = new
    return state


def source_state(pg_server: Any, table: str, key: str, columns: list[str]) -> dict[Any, dict]:
    cols = ", ".join(f'"{c}"' for c in columns)
    with pg_server.connect(autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        rows = conn.execute(f"SELECT {cols} FROM {table}").fetchall()
    return {r[columns.index(key)]: dict(zip(columns, r, strict=True)) for r in rows}


# --- every operation, values and types -----------------------------------------------------------------


def test_every_operation_in_commit_order_with_types(cdc, pg_server, capture_table, tmp_path: Path) -> None:
    names = capture_table(
        "cap_ops",
        '"Order_ID" integer PRIMARY KEY, "Amount" numeric(12,4), "Ratio" double precision, '
        '"Placed_At" timestamptz, "Local_At" timestamp, "Day" date, "Ref" uuid, "Meta" jsonb, '
        '"Notes" text, "Big" numeric, "Blob" bytea',
    )
    with pg_server.connect(autocommit=True) as conn:
        conn.execute('ALTER TABLE tests.cap_ops ALTER COLUMN "Notes" SET STORAGE EXTERNAL')
        conn.execute(
            "INSERT INTO tests.cap_ops VALUES (1, 12345678.1234, 'Infinity', '2024-03-01 12:00:00+02', "
            "'infinity', '-infinity', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"k\": [1, 2]}', %s, "
            "123456789012345678901234567890.123456789, '\\x00ff')",
            (TOAST_TEXT,),
        )
        # two interleaved transactions: B starts later but commits first
        with pg_server.connect() as a, pg_server.connect() as b:
            a.execute('INSERT INTO tests.cap_ops ("Order_ID", "Amount") VALUES (10, 1)')
            b.execute('INSERT INTO tests.cap_ops ("Order_ID", "Amount") VALUES (20, 2)')
            b.execute('UPDATE tests.cap_ops SET "Amount" = 2.5 WHERE "Order_ID" = 20')
            b.commit()
            a.execute('UPDATE tests.cap_ops SET "Amount" = 1.5 WHERE "Order_ID" = 10')
            a.commit()
        conn.execute(
            'UPDATE tests.cap_ops SET "Amount" = "Amount" + 1, "Ratio" = \'NaN\' WHERE "Order_ID" = 1'
        )
        conn.execute('UPDATE tests.cap_ops SET "Order_ID" = 11 WHERE "Order_ID" = 10')
        conn.execute('DELETE FROM tests.cap_ops WHERE "Order_ID" = 20')
        conn.execute("TRUNCATE tests.cap_ops")
        conn.execute('INSERT INTO tests.cap_ops ("Order_ID", "Amount") VALUES (30, -0.0001)')

    rows = run_available_now(cdc, names.table, tmp_path / "ck", tmp_path / "sink", snapshot="false")
    ops = [(r["_op"], r["Order_ID"]) for r in rows]
    assert ops == [
        ("insert", 1),
        ("insert", 20),
        ("update", 20),
        ("insert", 10),
        ("update", 10),
        ("update", 1),
        ("delete", 10),
        ("insert", 11),
        ("delete", 20),
        ("truncate", None),
        ("insert", 30),
    ]
    seqs = [r["_seq"] for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    lsns = [r["_lsn"] for r in rows]
    assert lsns == sorted(lsns)
    assert rows[1]["_lsn"] == rows[2]["_lsn"] and rows[1]["_seq"] + 1 == rows[2]["_seq"]  # same txn
    assert all(isinstance(r["_commit_ts"], dt.datetime) for r in rows)
    first = rows[0]
    assert first["Amount"] == Decimal("12345678.1234") and first["Ratio"] == float("inf")
    assert first["Placed_At"] == dt.datetime(2024, 3, 1, 10, 0)  # UTC (session time zone is UTC)
    assert first["Local_At"] == dt.datetime(9999, 12, 31, 23, 59, 59, 999999)  # +infinity sentinel
    assert first["Day"] == dt.date(1, 1, 1)  # -infinity sentinel
    assert first["Ref"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert first["Meta"] == '{"k": [1, 2]}'
    assert first["Big"] == "123456789012345678901234567890.123456789"  # exact, unconstrained numeric
    assert first["Blob"] == bytearray(b"\x00\xff") and first["Notes"] == TOAST_TEXT
    toast_update = rows[5]
    assert toast_update["_unchanged_cols"] == ["Notes"] and toast_update["Notes"] is None
    assert (
        toast_update["Amount"] == Decimal("12345679.1234") and toast_update["Ratio"] != toast_update["Ratio"]
    )
    assert rows[6]["Amount"] is None  # delete carries the key only (REPLICA IDENTITY DEFAULT)
    assert rows[-1]["Amount"] == Decimal("-0.0001")
    schema = {
        f.name: f.dataType.simpleString()
        for f in cdc.read.format("delta").load(str(tmp_path / "sink")).schema
    }
    assert schema["Amount"] == "decimal(12,4)" and schema["Placed_At"] == "timestamp"
    assert schema["Local_At"] == "timestamp_ntz" and schema["_seq"] == "bigint"
    assert schema["_unchanged_cols"] == "array<string>"


# --- snapshot + stream ----------------------------------------------------------------------------------

COLUMNS = ["Inventory_ID", "Quantity_Available", "Warehouse_ID", "Notes"]


def _workload(pg_server: Any, stop: threading.Event, count: list[int], seed: int) -> None:
    rng = random.Random(seed)
    next_id = 100_000 + seed * 100_000
    with pg_server.connect(autocommit=False) as conn:
        while not stop.is_set():
            for _ in range(rng.randint(1, 5)):
                kind = rng.random()
                if kind < 0.4:
                    conn.execute(
                        'UPDATE tests.cap_inv SET "Quantity_Available" = "Quantity_Available" + 1 '
                        'WHERE "Inventory_ID" = %s',
                        (rng.randint(1, 2000),),
                    )
                elif kind < 0.6:
                    conn.execute(
                        'DELETE FROM tests.cap_inv WHERE "Inventory_ID" = %s', (rng.randint(1, 2000),)
                    )
                else:
                    next_id += 1
                    conn.execute(
                        "INSERT INTO tests.cap_inv VALUES (%s, %s, %s, %s)",
                        (
                            next_id,
                            rng.randint(0, 99),
                            rng.randint(1, 50),
                            TOAST_TEXT if kind > 0.95 else None,
                        ),
                    )
                count[0] += 1
            conn.commit()
            time.sleep(0.002)


def test_snapshot_and_stream_give_the_exact_final_state(
    cdc, pg_server, capture_table, tmp_path: Path
) -> None:
    names = capture_table(
        "cap_inv",
        '"Inventory_ID" integer PRIMARY KEY, "Quantity_Available" integer, "Warehouse_ID" integer, "Notes" text',
        rows_sql="INSERT INTO tests.cap_inv SELECT g, g % 100, g % 50, CASE WHEN g % 97 = 0 THEN "
        "repeat('n', 5000) END FROM generate_series(1, 2000) g",
    )
    with pg_server.connect(autocommit=True) as conn:
        conn.execute('ALTER TABLE tests.cap_inv ALTER COLUMN "Notes" SET STORAGE EXTERNAL')
        # changes after the slot's consistent point and before the stream's first batch
        conn.execute('UPDATE tests.cap_inv SET "Quantity_Available" = -1 WHERE "Inventory_ID" <= 10')
        conn.execute('DELETE FROM tests.cap_inv WHERE "Inventory_ID" BETWEEN 11 AND 20')
    stop, count = threading.Event(), [0]
    worker = threading.Thread(target=_workload, args=(pg_server, stop, count, 1))
    worker.start()
    try:
        time.sleep(0.5)
        rows = run_available_now(
            cdc, names.table, tmp_path / "ck", tmp_path / "sink", maxChangesPerBatch="500"
        )
        rows = run_available_now(
            cdc, names.table, tmp_path / "ck", tmp_path / "sink", maxChangesPerBatch="500"
        )
    finally:
        stop.set()
        worker.join()
    rows = run_available_now(cdc, names.table, tmp_path / "ck", tmp_path / "sink")
    assert count[0] > 50
    snapshot = [r for r in rows if r["_op"] == "snapshot"]
    assert len(snapshot) >= 1900
    assert max(r["_seq"] for r in snapshot) < min(r["_seq"] for r in rows if r["_op"] != "snapshot")
    assert len({r["_seq"] for r in rows if r["_op"] != "snapshot"}) == len(rows) - len(snapshot)
    assert apply_changes(rows, "Inventory_ID", COLUMNS) == source_state(
        pg_server, names.table, "Inventory_ID", COLUMNS
    )


# --- restarts -------------------------------------------------------------------------------------------


def test_query_restart_replays_an_uncommitted_batch_exactly(
    cdc, pg_server, capture_table, tmp_path: Path
) -> None:
    names = capture_table("cap_rs", '"Id" integer PRIMARY KEY, "V" integer')
    batches: dict[int, list[tuple]] = {}
    deliveries: list[int] = []

    def collect(df: Any, batch_id: int) -> None:
        deliveries.append(batch_id)
        batches[batch_id] = sorted((r["_seq"], r["_op"], r["Id"], r["V"]) for r in df.collect())

    def run() -> None:
        query = foreach_batch_query(cdc, names.table, collect, tmp_path / "ck", availableNow=True)
        query.awaitTermination(120)
        assert query.exception() is None

    with pg_server.connect(autocommit=True) as conn:
        for i in range(1, 6):
            conn.execute("INSERT INTO tests.cap_rs VALUES (%s, %s)", (i, i))
        run()
        conn.execute('UPDATE tests.cap_rs SET "V" = "V" * 10')
        conn.execute('DELETE FROM tests.cap_rs WHERE "Id" = 3')
        run()
        last = max(batches)
        replayed = list(batches[last])
        # crash after the sink wrote batch `last` but before Spark recorded it as committed
        (tmp_path / "ck" / "commits" / str(last)).unlink()
        shutil.rmtree(tmp_path / "ck" / "commits" / f".{last}.crc", ignore_errors=True)
        (tmp_path / "ck" / "commits" / f".{last}.crc").unlink(missing_ok=True)
        conn.execute("INSERT INTO tests.cap_rs VALUES (6, 6)")
        run()
    assert deliveries.count(last) == 2 and batches[last] == replayed  # the same batch, the same rows
    everything = [row for b in sorted(batches) for row in batches[b]]
    seqs = [r[0] for r in everything]
    assert len(seqs) == len(set(seqs)) == 5 + 5 + 1 + 1  # nothing lost, nothing duplicated
    assert everything[-1][1:] == ("insert", 6, 6)
    with pg_server.connect(autocommit=True) as conn:
        state = slot_state(conn, names.slot)
    assert state.confirmed_flush_lsn is not None


def test_server_restart_mid_stream_loses_and_doubles_nothing(
    cdc, pg_server, capture_table, tmp_path: Path
) -> None:
    from inventory_devkit.postgres.server import ensure_server, stop_server

    names = capture_table("cap_pg", '"Id" integer PRIMARY KEY, "V" integer')
    seen: list[tuple] = []
    lock = threading.Lock()

    def collect(df: Any, batch_id: int) -> None:
        with lock:
            seen.extend((r["_seq"], r["_op"], r["Id"]) for r in df.collect())

    query = (
        cdc.readStream.format("pgcdc")
        .option("table", names.table)
        .option("secretsFile", secrets_file())
        .option("snapshot", "false")
        .option("reconnectTimeout", "90")
        .load()
        .writeStream.foreachBatch(collect)
        .option("checkpointLocation", str(tmp_path / "ck"))
        .trigger(processingTime="500 milliseconds")
        .start()
    )
    try:
        expected = 0
        with pg_server.connect(autocommit=True) as conn:
            for i in range(1, 101):
                conn.execute("INSERT INTO tests.cap_pg VALUES (%s, %s)", (i, i))
                expected += 1
        time.sleep(1.0)
        stop_server(pg_server.data_dir)
        time.sleep(1.5)
        ensure_server(pg_server.data_dir)
        with pg_server.connect(autocommit=True) as conn:
            conn.execute('UPDATE tests.cap_pg SET "V" = 0 WHERE "Id" <= 50')
            conn.execute('DELETE FROM tests.cap_pg WHERE "Id" > 90')
            expected += 50 + 10
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with lock:
                if len(seen) >= expected:
                    break
            assert query.isActive, query.exception()
            time.sleep(0.5)
        time.sleep(1.5)  # a duplicate would arrive in the next batches
    finally:
        query.stop()
    seqs = [s[0] for s in seen]
    assert len(seqs) == len(set(seqs)) == expected
    assert sorted(seen)[-1][1] == "delete"


def test_a_continuous_stream_decodes_each_transaction_once_and_confirms_as_it_commits(
    cdc, pg_server, capture_table, tmp_path: Path
) -> None:
    """The stream holds one replication connection: the server decodes every transaction once, however many
    triggers run while it is not yet confirmed, and the slot is confirmed up to each committed batch."""
    names = capture_table("cap_once", '"Id" integer PRIMARY KEY, "V" integer')
    seen: list[int] = []
    lock = threading.Lock()

    def collect(df: Any, batch_id: int) -> None:
        time.sleep(0.3)  # a slow sink: several triggers while a batch is not yet confirmed
        with lock:
            seen.extend(r["Id"] for r in df.collect())

    decoded_sql = "SELECT coalesce(max(total_txns), 0) FROM pg_stat_replication_slots WHERE slot_name = %s"
    with pg_server.connect(autocommit=True) as conn:
        (decoded_before,) = conn.execute(decoded_sql, (names.slot,)).fetchone()
    query = foreach_batch_query(cdc, names.table, collect, tmp_path / "ck", processingTime="100 milliseconds")
    transactions = 40
    try:
        deadline = time.monotonic() + 120
        while query.lastProgress is None and time.monotonic() < deadline:  # the reader's worker is up
            assert query.isActive, query.exception()
            time.sleep(0.2)
        with pg_server.connect(autocommit=True) as conn:
            inside = {}  # the WAL position inside each transaction: its commit comes after it
            for i in range(1, transactions + 1):
                (inside[i],) = conn.execute(
                    "INSERT INTO tests.cap_once VALUES (%s, %s) RETURNING pg_current_wal_insert_lsn()", (i, i)
                ).fetchone()
                time.sleep(0.1)
            streaming = conn.execute(
                "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'inventory-bronze-capture'"
            ).fetchone()[0]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(seen) < transactions:
            assert query.isActive, query.exception()
            time.sleep(0.2)
        time.sleep(1.5)  # more triggers, more commits
        with pg_server.connect(autocommit=True) as conn:
            confirmed_half = conn.execute(
                "SELECT confirmed_flush_lsn > %s FROM pg_replication_slots WHERE slot_name = %s",
                (inside[transactions // 2], names.slot),
            ).fetchone()[0]
    finally:
        query.stop()
    assert sorted(seen) == list(range(1, transactions + 1))
    assert streaming >= 1  # a walsender serves the stream (START_REPLICATION), not repeated peeks
    # committed batches are confirmed while the stream runs (Spark commits a batch to its source when it
    # starts the next one: the last batch stays unconfirmed until then, and is streamed again on a restart)
    assert confirmed_half
    with pg_server.connect(autocommit=True) as conn:
        (decoded_after,) = conn.execute(decoded_sql, (names.slot,)).fetchone()
    # peeking from the confirmed position at every trigger decoded each unconfirmed transaction again
    assert transactions <= decoded_after - decoded_before <= transactions + 5


# --- failures -------------------------------------------------------------------------------------------


def test_dropped_slot_gives_a_clear_error_and_recovery(cdc, pg_server, capture_table, tmp_path: Path) -> None:
    names = capture_table("cap_drop", '"Id" integer PRIMARY KEY')
    with pg_server.connect(autocommit=True) as conn:
        conn.execute("INSERT INTO tests.cap_drop VALUES (1)")
    run_available_now(cdc, names.table, tmp_path / "ck", tmp_path / "sink")
    with pg_server.connect(autocommit=True) as conn:
        conn.execute("SELECT pg_drop_replication_slot(%s)", (names.slot,))
        conn.execute("INSERT INTO tests.cap_drop VALUES (2)")
    with pytest.raises(Exception) as err:
        run_available_now(cdc, names.table, tmp_path / "ck", tmp_path / "sink")
    text = str(err.value)
    assert names.slot in text and "does not exist" in text and "capture setup --table tests.cap_drop" in text


def test_a_table_that_changes_while_its_stream_runs_stops_it_and_nothing_is_lost(
    cdc, pg_server, capture_table, tmp_path: Path
) -> None:
    """The stream's schema is the table's when the query is defined. A column dropped before that: the
    earlier changes are decoded without it. A column added, or a type changed, after that: the stream
    stops before the batch, naming the columns; a query defined again takes the changes with the new
    schema from the same checkpoint, none lost or doubled."""
    names = capture_table("cap_drift", '"Id" integer PRIMARY KEY, "Qty" integer, "Old" text')
    with pg_server.connect(autocommit=True) as conn:
        conn.execute("INSERT INTO tests.cap_drift VALUES (1, 1, 'a')")
        conn.execute('ALTER TABLE tests.cap_drift DROP COLUMN "Old"')
    checkpoint, sink = tmp_path / "ck", tmp_path / "sink"
    reader = cdc.readStream.format("pgcdc").option("table", names.table).option("secretsFile", secrets_file())
    defined = reader.option("snapshot", "false").load()  # the schema is read now: Id, Qty integer
    with pg_server.connect(autocommit=True) as conn:
        conn.execute('ALTER TABLE tests.cap_drift ADD COLUMN "Shelf" text')
        conn.execute('ALTER TABLE tests.cap_drift ALTER COLUMN "Qty" TYPE bigint')
        conn.execute("INSERT INTO tests.cap_drift VALUES (2, 5000000000, 's')")
    query = (
        defined.writeStream.format("delta")
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start(str(sink))
    )
    with pytest.raises(Exception) as stopped:
        query.awaitTermination(180)
    text = str(stopped.value)
    assert "tests.cap_drift changed while its stream ran: Qty (int -> bigint), Shelf (new)" in text, text
    assert not (sink / "_delta_log").exists() or spark_rows(cdc, sink) == []
    rows = run_available_now(cdc, names.table, checkpoint, sink, snapshot="false")
    assert [(r["_op"], r["Id"], r["Qty"], r["Shelf"]) for r in rows] == [
        ("insert", 1, 1, None),
        ("insert", 2, 5000000000, "s"),
    ]


def spark_rows(spark: Any, path: Path) -> list[dict]:
    return [r.asDict() for r in spark.read.format("delta").load(str(path)).collect()]


def test_replica_identity_is_checked(pg_server, capture_table) -> None:
    from inventory_bronze.source.capture_errors import ReplicaIdentityError

    with pytest.raises(ReplicaIdentityError) as err:
        capture_table("cap_nopk", '"Id" integer, "V" text')
    assert "tests.cap_nopk" in str(err.value) and "REPLICA IDENTITY FULL" in str(err.value)
    with pg_server.connect(autocommit=True) as conn:
        conn.execute("ALTER TABLE tests.cap_nopk REPLICA IDENTITY FULL")
        setup_capture(conn, CaptureNames.for_table("tests.cap_nopk"))  # now accepted


def test_stream_with_a_wrong_password_names_the_secret(cdc, pg_server, tmp_path: Path) -> None:
    import json

    local = tmp_path / "local.json"
    local.write_text(
        json.dumps(
            {
                "KConnectionString": pg_server.jdbc_url,
                "KUser": pg_server.user,
                "KWrongPassword": "not-the-password-xyz",
            }
        )
    )
    with pytest.raises(Exception) as err:
        cdc.readStream.format("pgcdc").option("table", "tests.cap_any").option(
            "secretsFile", str(local)
        ).option("passwordSecret", "KWrongPassword").load()
    text = str(err.value)
    assert "KWrongPassword" in text and "not-the-password-xyz" not in text


def test_resolved_options_still_name_their_secrets(pg_server, monkeypatch, tmp_path: Path) -> None:
    """Values resolved in the driver (`resolved_options`, Databricks' way) carry the secrets' names, so a
    wrong password names KPassword, never `option 'password'` nor the value."""
    import json

    from inventory_bronze.source.capture_connection import (
        connection_from_options,
        open_connection,
        resolved_options,
    )
    from inventory_bronze.source.errors import ConnectionFailed
    from inventory_devkit.postgres import server

    local = tmp_path / "local.json"
    values = {"KConnectionString": pg_server.jdbc_url, "KUser": pg_server.user, "KPassword": "wrong-pw-xyz"}
    local.write_text(json.dumps(values))
    monkeypatch.setenv(server.ENV_SECRETS_FILE, str(local))
    options = resolved_options()
    assert options["passwordSecret"] == "KPassword" and "wrong-pw-xyz" not in str(
        {k: v for k, v in options.items() if k != "password"}
    )
    conn = connection_from_options({k.upper() if k == "url" else k: v for k, v in options.items()})
    assert (conn.url_secret, conn.user_secret, conn.password_secret) == (
        "KConnectionString",
        "KUser",
        "KPassword",
    )
    with pytest.raises(ConnectionFailed) as refused:
        open_connection(conn)
    text = str(refused.value)
    assert "KPassword" in text and "option 'password'" not in text and "wrong-pw-xyz" not in text


def test_capture_commands(pg_server, capture_table, capsys) -> None:
    from inventory_bronze.cli import main

    capture_table("cap_cli", '"Id" integer PRIMARY KEY', setup=False)
    assert main(["capture", "setup", "--table", "tests.cap_cli"]) == 0
    assert "slot ib_cdc_cap_cli (created" in capsys.readouterr().out
    assert main(["capture", "status", "--table", "tests.cap_cli"]) == 0
    assert "replica_identity: ok" in capsys.readouterr().out
    assert main(["capture", "drop", "--table", "tests.cap_cli"]) == 0
    assert "dropped" in capsys.readouterr().out
    assert main(["capture", "status", "--table", "tests.cap_cli"]) == 1
    assert main(["secrets", "check"]) == 0
