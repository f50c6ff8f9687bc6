"""Source faults on the real local PostgreSQL: a stopped server is retried with exponential backoff (1 s,
2 s, 4 s) and then fails naming the table and the host; a server back within the retries is survived; a
dropped replication slot fails the update clearly and the documented recovery (docs/operations.md) brings
bronze back to the source; wrong credentials and an unreachable vault fail clearly without a secret.

(A server restarted in the middle of a change stream: tests/source/test_capture.py::
test_server_restart_mid_stream_loses_and_doubles_nothing.)"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inventory_bronze import pii
from inventory_bronze.bronze import BronzeTable
from inventory_bronze.source import retry
from inventory_bronze.source.errors import ConnectionFailed
from inventory_devkit import project
from tests.reliability.helpers import table_update


# ---------------------------------------------------------------------------------------------- backoff
def test_backoff_is_1_2_4_seconds_then_a_clear_failure() -> None:
    assert retry.Backoff().delays() == [1.0, 2.0, 4.0]
    retries = project.bronze_config().source.retry  # conf/tables.yml: source.retry, the defaults
    assert retry.Backoff(retries.retries, retries.first_delay_s, retries.factor) == retry.Backoff()
    slept: list[float] = []
    calls = 0

    def refused() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionRefusedError("connection refused by 10.0.0.9")

    with pytest.raises(retry.SourceUnavailable) as err:
        retry.call(refused, what="snapshot of tests.orders", host="db.example:5432", sleep=slept.append)
    assert calls == 4 and slept == [1.0, 2.0, 4.0]
    assert "snapshot of tests.orders" in str(err.value) and "db.example:5432" in str(err.value)

    def wrong_table() -> None:
        raise RuntimeError('relation "tests.nope" does not exist')

    with pytest.raises(RuntimeError):  # not transient: no retry
        retry.call(wrong_table, what="x", host="h", sleep=slept.append)
    assert slept == [1.0, 2.0, 4.0]


def test_backoff_is_configurable_in_the_source_section(tmp_path: Path) -> None:
    import yaml

    from inventory_bronze import config

    data = yaml.safe_load(project.CONFIG_PATH.read_text())
    data["source"]["retry"] = {"retries": 5, "first_delay_s": 0.5, "factor": 3}
    path = tmp_path / "tables.yml"
    path.write_text(yaml.safe_dump(data))
    source = config.load(path).source
    assert retry.Backoff(source.retry.retries, source.retry.first_delay_s, source.retry.factor).delays() == [
        0.5,
        1.5,
        4.5,
        13.5,
        40.5,
    ]
    data["source"]["retry"] = {"retries": "many"}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(Exception, match="source.retry.retries"):
        config.load(path)


# --------------------------------------------------------------------------------- a stopped server
@pytest.fixture
def stopped_source(pg_seeded: Any) -> Iterator[Any]:
    """The seeded server, stopped; started again afterwards whatever the test did."""
    from inventory_devkit.postgres.server import ensure_server, stop_server

    stop_server(pg_seeded.data_dir)
    try:
        yield pg_seeded
    finally:
        ensure_server(pg_seeded.data_dir)


def test_a_stopped_source_fails_the_snapshot_after_the_retries_naming_table_and_host(
    spark: Any, stopped_source: Any
) -> None:
    started = time.monotonic()
    with pytest.raises(retry.SourceUnavailable) as err:
        BronzeTable.of(spark, project.bronze_config(), "warehouses").snapshot()
    assert time.monotonic() - started >= 7.0  # 1 s + 2 s + 4 s
    text = str(err.value)
    assert "tests.warehouses" in text and f"{stopped_source.port}" in text and "4 attempt(s)" in text
    assert stopped_source.password not in text


def test_a_stopped_source_fails_the_capture_connection_after_the_retries(stopped_source: Any) -> None:
    from inventory_bronze.secrets import source_connection
    from inventory_bronze.source.capture_connection import open_connection

    started = time.monotonic()
    with pytest.raises(retry.SourceUnavailable) as err:
        open_connection(source_connection())
    assert time.monotonic() - started >= 7.0
    assert f"127.0.0.1:{stopped_source.port}" in str(err.value) and stopped_source.password not in str(
        err.value
    )


def test_a_source_back_within_the_retries_is_survived(spark: Any, stopped_source: Any) -> None:
    from inventory_devkit.postgres.server import ensure_server

    restart = threading.Timer(1.5, ensure_server, args=(stopped_source.data_dir,))
    restart.start()
    try:
        frame = BronzeTable.of(spark, project.bronze_config(), "warehouses").snapshot()
        count = frame.count()
    finally:
        restart.join()
    with stopped_source.connect() as conn:
        assert count == conn.execute("SELECT count(*) FROM tests.warehouses").fetchone()[0] > 0


# ---------------------------------------------------------------------------------------- an update
@pytest.fixture
def pii_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from inventory_bronze.secrets import env_var_for

    key = pii.generate_key()
    monkeypatch.setenv(env_var_for(pii.DEFAULT_KEY_SECRET), key)
    pii.reset_keys()
    yield key
    pii.reset_keys()


def test_an_update_with_the_source_down_fails_naming_table_and_host(
    spark: Any, stopped_source: Any, pii_key: str, tmp_path: Path
) -> None:
    result = table_update(spark, "warehouses", tmp_path / "s")
    assert not result.ok
    text = str(result.error)
    assert "tests.warehouses" in text and str(stopped_source.port) in text and "unreachable" in text
    assert stopped_source.password not in text and pii_key not in text


def test_wrong_credentials_fail_clearly_without_the_password(
    spark: Any, pg_seeded: Any, pii_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inventory_bronze.secrets import env_var_for

    wrong = "Wrong-Canary-Password-5e1f"
    monkeypatch.setenv(env_var_for("KPassword"), wrong)
    # the JDBC snapshot resolves its secrets in this process (the capture's Python workers got their
    # environment when Spark started: the crash suite's wrong-credentials run covers both, as subprocesses)
    result = table_update(spark, "warehouses", tmp_path / "s")
    assert not result.ok
    text = str(result.error)
    assert "KPassword" in text and "tests.warehouses" in text, text[:2000]
    assert wrong not in text and pg_seeded.password not in text


def test_an_unreachable_vault_fails_naming_the_vault_url() -> None:
    from inventory_bronze.secrets import SecretProviderError, default_chain, source_connection

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"https://127.0.0.1:{port}"
    started = time.monotonic()
    with pytest.raises(SecretProviderError) as err:
        source_connection(chain=default_chain(vault_url=url))
    assert time.monotonic() - started < 30
    assert url in str(err.value) and "KConnectionString" in str(err.value)


# ------------------------------------------------------------------------------ a dropped replication slot
def test_a_dropped_slot_fails_clearly_and_the_documented_recovery_restores_bronze(
    spark: Any, pg_seeded: Any, pii_key: str, tmp_path: Path
) -> None:
    from inventory_bronze.reconcile import compare_rows
    from inventory_bronze.source.capture_slot import CaptureNames, drop_capture, setup_capture
    from inventory_devkit.postgres.workload import run_changes

    names = CaptureNames.for_table("tests.returns")
    with pg_seeded.connect(autocommit=True) as conn:
        drop_capture(conn, names)
        setup_capture(conn, names)
    storage = tmp_path / "s"
    assert table_update(spark, "returns", storage).ok
    with pg_seeded.connect(autocommit=True) as conn:
        conn.execute("SELECT pg_drop_replication_slot(%s)", (names.slot,))
    run_changes(pg_seeded, count=200, seed=3, quiet=True)  # changes the dropped slot never saw

    failed = table_update(spark, "returns", storage)
    assert not failed.ok
    # the flow's error as the event log keeps it (the update's one-line summary cuts the data source's text)
    text = str(failed.error) + "".join(str(o.error) for o in failed.flows.values() if o.error is not None)
    assert names.slot in text and "does not exist" in text and "capture setup --table tests.returns" in text

    # recovery (docs/operations.md): set the capture up again, then a full refresh of that table
    with pg_seeded.connect(autocommit=True) as conn:
        setup_capture(conn, names)
    refreshed = table_update(
        spark,
        "returns",
        storage,
        full_refresh_tables=["bz_returns", "bz_returns_changes", "bz_returns_quarantine"],
    )
    assert refreshed.ok, refreshed.error
    with pg_seeded.connect(autocommit=True) as conn:
        (row,) = compare_rows(
            spark, storage.parent, conn, project.bronze_config(), tables=["returns"]
        )  # storage is one pipeline
        drop_capture(conn, names)
    assert row.ok and row.source_rows > 0, row


def test_connection_failed_is_the_base_of_source_unavailable() -> None:
    assert issubclass(retry.SourceUnavailable, ConnectionFailed)
