"""The local PostgreSQL server: start, idempotence, status, stop/restart, credentials, secrets file."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path

import pytest

from inventory_bronze.source.errors import ConnectionFailed, ServerNotRunning
from inventory_devkit.postgres import server
from tests.fixtures.postgres import server_folder


def test_server_runs_with_logical_wal_and_login_role(pg_server: server.ServerInfo) -> None:
    with pg_server.connect() as conn:
        row = conn.execute(
            "SELECT current_user, current_database(), current_setting('wal_level'), "
            "current_setting('max_replication_slots')::int, current_setting('server_version_num')::int, "
            "(SELECT rolreplication FROM pg_roles WHERE rolname = current_user), "
            "(SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'tests')"
        ).fetchone()
    assert row == ("inventory_bronze", "DE", "logical", 20, row[4], True, "inventory_bronze")
    assert 160000 <= row[4] < 170000
    assert pg_server.jdbc_url == f"jdbc:postgresql://127.0.0.1:{pg_server.port}/DE"


def test_ensure_server_is_idempotent(pg_server: server.ServerInfo) -> None:
    again = server.ensure_server(pg_server.data_dir)
    assert again == pg_server
    status = server.server_status(pg_server.data_dir)
    assert status.running and status.info == pg_server
    assert pg_server.password not in status.describe()
    assert pg_server.password not in repr(pg_server)


def test_secrets_file_holds_the_seed_names(pg_server: server.ServerInfo) -> None:
    path = Path(os.environ[server.ENV_SECRETS_FILE])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "KConnectionString": pg_server.jdbc_url,
        "KUser": pg_server.user,
        "KPassword": pg_server.password,
    }


def test_wrong_password_fails_with_a_clear_error(pg_server: server.ServerInfo) -> None:
    bad = dataclasses.replace(pg_server, password="not-the-password")
    with pytest.raises(ConnectionFailed) as caught:
        bad.connect()
    message = str(caught.value)
    assert "password authentication failed" in message and "KPassword" in message
    assert "not-the-password" not in message and pg_server.password not in message


def test_superuser_cannot_log_in_over_tcp(pg_server: server.ServerInfo) -> None:
    superuser = dataclasses.replace(pg_server, user="postgres", password="")
    with pytest.raises(ConnectionFailed):
        superuser.connect()


def test_stop_status_and_restart() -> None:
    """A second, private server: the shared one keeps running for the other tests."""
    with server_folder() as folder:
        _stop_status_and_restart(folder)


def _stop_status_and_restart(folder: Path) -> None:
    data_dir = folder / "pg"
    secrets = folder / "secrets.json"
    saved = os.environ.get(server.ENV_SECRETS_FILE)
    os.environ[server.ENV_SECRETS_FILE] = str(secrets)
    try:
        info = server.ensure_server(data_dir)
        with info.connect(autocommit=True) as conn:
            conn.execute("CREATE TABLE tests.keep_me (id int)")
        assert server.stop_server(data_dir) is True
        assert server.stop_server(data_dir) is False
        assert not server.server_status(data_dir).running
        with pytest.raises(ServerNotRunning, match="db start"):
            server.server_info(data_dir)
        with pytest.raises(ConnectionFailed, match="db start"):
            info.connect()
        again = server.ensure_server(data_dir)
        assert again.password == info.password
        os.environ.pop(server.ENV_SECRETS_FILE)  # a side server keeps its secrets in its own folder
        server.ensure_server(data_dir)
        assert json.loads((data_dir / "secrets.json").read_text())["KPassword"] == info.password
        assert server.secrets_file(data_dir) == data_dir.resolve() / "secrets.json"
        assert server.secrets_file(None).name == "local.json"
        with again.connect() as conn:
            assert conn.execute("SELECT to_regclass('tests.keep_me') IS NOT NULL").fetchone() == (True,)
    finally:
        server.stop_server(data_dir)
        if saved is None:
            os.environ.pop(server.ENV_SECRETS_FILE, None)
        else:
            os.environ[server.ENV_SECRETS_FILE] = saved


def test_server_info_from_the_seed_secrets() -> None:
    info = server.ServerInfo.from_jdbc_url(
        "jdbc:postgresql://db.example.org/DE?sslmode=require", "u", "s3cret"
    )
    assert (info.host, info.port, info.database, info.user) == ("db.example.org", 5432, "DE", "u")
    assert info.jdbc_url == "jdbc:postgresql://db.example.org:5432/DE" and "s3cret" not in repr(info)
    ipv6 = server.ServerInfo.from_jdbc_url("jdbc:postgresql://[::1]:6000/DE", "u", "p")
    assert ipv6.host == "::1" and ipv6.jdbc_url == "jdbc:postgresql://[::1]:6000/DE"
    with pytest.raises(server.ServerError, match="KConnectionString"):
        server.ServerInfo.from_jdbc_url("postgresql://db/DE", "u", "p")


def test_lost_state_file_keeps_the_running_port_and_sets_a_new_password(pg_server: server.ServerInfo) -> None:
    assert pg_server.data_dir is not None
    state = pg_server.data_dir / "server.json"
    saved = state.read_text()
    state.unlink()
    try:
        info = server.ensure_server(pg_server.data_dir)
        assert info.port == pg_server.port and info.password != pg_server.password
        with info.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        state.write_text(saved)
        server.ensure_server(pg_server.data_dir)  # the old password again
    with pg_server.connect() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_other_secrets_are_kept_and_a_malformed_file_is_refused_untouched(
    pg_server: server.ServerInfo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The secrets file may hold the PII key: `db start` keeps it, and never rewrites a file it cannot parse
    (a trailing comma once cost the key, and with it the encrypted data)."""
    from inventory_bronze.cli import main
    from inventory_bronze.source.errors import ServerError

    path = tmp_path / "local.json"
    monkeypatch.setenv(server.ENV_SECRETS_FILE, str(path))
    path.write_text(json.dumps({"KPiiEncryptionKey": "the-key"}))
    server.ensure_server(pg_server.data_dir)
    assert json.loads(path.read_text())["KPiiEncryptionKey"] == "the-key"

    for malformed in ('{"KPiiEncryptionKey": "the-key",}\n', '["KPiiEncryptionKey"]\n'):
        path.write_text(malformed)
        with pytest.raises(ServerError) as refused:
            server.ensure_server(pg_server.data_dir)
        assert str(path) in str(refused.value) and "nothing was changed" in str(refused.value)
        assert path.read_text() == malformed
        assert main(["db", "start", "--data-dir", str(pg_server.data_dir)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"db start: The secrets file {path}") and "Traceback" not in err
        assert path.read_text() == malformed


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another OS user")
def test_a_clone_in_a_private_folder_runs_its_server_without_opening_the_folder(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run as root from a clone in a private folder (root's home, `mktemp -d`): the server's OS user
    cannot reach the binaries in the clone's virtualenv nor its data folder. The cluster and a copy of the
    binaries go where it can, `db start` says where, and no folder of the user's changes its mode."""
    import shutil
    import tempfile

    from inventory_bronze.cli import main
    from inventory_devkit.postgres import server_access

    private = Path(tempfile.mkdtemp(prefix="inventory-bronze-private-"))  # mode 700
    installed = server.pg_bin_dir().parents[2]  # site-packages holding pgserver and pgserver.libs
    venv = private / "clone" / ".venv" / "site-packages"
    for name in ("pgserver", "pgserver.libs"):
        shutil.copytree(installed / name, venv / name)
    data_dir = (private / "clone" / "var" / "postgres").resolve()
    modes = {p: p.stat().st_mode for p in (private, venv)}
    monkeypatch.setenv(server.ENV_PG_BIN, str(venv / "pgserver" / "pginstall" / "bin"))
    monkeypatch.setenv(server.ENV_SECRETS_FILE, str(private / "secrets.json"))
    cluster = server_access.cluster_dir(data_dir)
    try:
        assert main(["db", "start", "--data-dir", str(data_dir)]) == 0
        assert f"cluster: {cluster}" in capsys.readouterr().out
        assert cluster.parent == server_access.SHARED_ROOT / "clusters"
        admin = server.server_info(data_dir).admin_conninfo("postgres")
        with server.connect(admin, autocommit=True, what="the private clone's server") as conn:
            assert conn.execute("SHOW data_directory").fetchone() == (str(cluster / "pgdata"),)
        assert {p: p.stat().st_mode for p in modes} == modes
        assert server.stop_server(data_dir) is True
        assert server.ensure_server(data_dir).port  # restarts from the same cluster
    finally:
        server.stop_server(data_dir)
        shutil.rmtree(cluster, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)
