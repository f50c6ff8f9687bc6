"""The local PostgreSQL 16 source server: start, stop and status, idempotent, safe to run as root.

Layout of a server folder (`var/postgres` of the repo by default, `data_dir` to choose another):

    <data_dir>/pgdata/       the cluster (owned by the server's OS user, mode 700)
    <data_dir>/run/          the Unix socket of the superuser's admin connections
    <data_dir>/postgres.log  the server log
    <data_dir>/server.json   port, login role and its password (mode 600, never printed)

(As root, when the server's OS user cannot reach <data_dir>, the first three live in a folder of their own
under /var/lib/inventory-bronze/clusters/: see `server_access`; `db start` prints where.)

The binaries are the PostgreSQL 16 build that the `pgserver` package ships, so no system install is needed.
As root, the server runs as an unprivileged OS user (PostgreSQL refuses to run as root): `postgres` when it
exists, else `inventory-pg`, created with `useradd`. When that user cannot reach the data folder or the
binaries (a clone in a private folder), they are placed where it can (`server_access`); no folder's mode
is changed.

Access: the superuser `postgres` connects only through the Unix socket (trust, the socket folder is private
to the server's OS user and root). Over TCP on 127.0.0.1 every role needs its scram-sha-256 password, so
wrong credentials really fail. The login role (`inventory_bronze`) has LOGIN and REPLICATION, owns the
database "DE" and its schema `tests`. The server listens on a free port picked at first start and kept
while it stays free.

Long because: the whole life of the embedded server (initdb, start, stop, status, relocation of the
cluster, the local secrets file), each step with its one-line error.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import pwd
import re
import secrets
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from inventory_bronze.source.errors import ConnectionFailed, ServerError, ServerNotRunning
from inventory_devkit import project
from inventory_devkit.postgres import server_access

DATABASE = "DE"
SCHEMA = "tests"
LOGIN_ROLE = "inventory_bronze"
SUPERUSER = "postgres"
HOST = "127.0.0.1"
FALLBACK_OS_USER = "inventory-pg"

#: Environment variables that override defaults.
ENV_DATA_DIR = "INVENTORY_BRONZE_PG_DIR"
ENV_SECRETS_FILE = "INVENTORY_BRONZE_SECRETS_FILE"
ENV_PG_BIN = "INVENTORY_BRONZE_PG_BIN"

#: Secret names of the seed (section 5.1) and what the local secrets file maps them to.
SECRET_URL, SECRET_USER, SECRET_PASSWORD = "KConnectionString", "KUser", "KPassword"

#: Server settings written to `inventory_bronze.conf`, included from postgresql.conf. `port` is added.
SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": f"'{HOST}'",
    "wal_level": "logical",
    "max_replication_slots": "20",
    "max_wal_senders": "20",
    "max_connections": "100",
    "password_encryption": "'scram-sha-256'",
    "shared_buffers": "256MB",
    "wal_buffers": "64MB",  # bulk COPY: about 30% faster than the 8 MB default
    # The change workload commits asynchronously; the WAL writer then flushes within 10 ms, and logical
    # decoding (which only sends flushed WAL) sees each commit about that soon.
    "wal_writer_delay": "10ms",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "logical_decoding_work_mem": "64MB",
}

PG_HBA = """\
# Written by inventory_devkit.postgres.server; rewritten at every start.
# TYPE  DATABASE     USER       ADDRESS        METHOD
local   all          postgres                  trust
local   replication  postgres                  trust
local   all          all                       scram-sha-256
host    all          all        127.0.0.1/32   scram-sha-256
host    replication  all        127.0.0.1/32   scram-sha-256
"""

_START_TIMEOUT_S = 60
_JDBC_URL = re.compile(r"^jdbc:postgresql://(?P<host>\[[^\]]+\]|[^/:?]+)(?::(?P<port>\d+))?/(?P<db>[^?;]+)")


@dataclass(frozen=True)
class ServerInfo:
    """How to reach the running local source server. `repr` and `str` never show the password."""

    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)
    schema: str = SCHEMA
    data_dir: Path | None = None
    socket_dir: Path | None = None

    @classmethod
    def from_jdbc_url(cls, jdbc_url: str, user: str, password: str) -> ServerInfo:
        """Connection info from the seed's secrets (KConnectionString, KUser, KPassword), e.g. on Databricks.
        Only host, port and database are taken from the URL; its query parameters are ignored."""
        match = _JDBC_URL.match(jdbc_url.strip())
        if not match:
            raise ServerError(
                "The connection string (secret KConnectionString) is not a PostgreSQL JDBC URL of the form "
                "jdbc:postgresql://HOST[:PORT]/DATABASE: fix the secret."
            )
        host, port, database = match.group("host").strip("[]"), match.group("port"), match.group("db")
        return cls(
            host=host, port=int(port or 5432), database=unquote(database), user=user, password=password
        )

    @property
    def jdbc_url(self) -> str:
        """JDBC URL without credentials (pass user/password as properties)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"jdbc:postgresql://{host}:{self.port}/{self.database}"

    @property
    def url(self) -> str:
        """A libpq URL without the password, safe to print."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{self.user}@{host}:{self.port}/{self.database}"

    @property
    def conninfo(self) -> str:
        """psycopg/libpq connection string of the login role over TCP (holds the password)."""
        return make_conninfo(
            host=self.host,
            port=str(self.port),
            dbname=self.database,
            user=self.user,
            password=self.password,
            application_name="inventory-bronze",
        )

    def jdbc_properties(self) -> dict[str, str]:
        """Spark JDBC options for user, password and driver."""
        return {"user": self.user, "password": self.password, "driver": "org.postgresql.Driver"}

    def admin_conninfo(self, database: str | None = None) -> str:
        """Superuser connection through the Unix socket (local administration only)."""
        if self.socket_dir is None:
            raise ServerError("This ServerInfo has no socket folder: admin connections need a local server.")
        return make_conninfo(
            host=str(self.socket_dir), port=str(self.port), dbname=database or self.database, user=SUPERUSER
        )

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection:
        """A new psycopg connection as the login role; bad credentials raise ConnectionFailed."""
        return connect(self.conninfo, autocommit=autocommit, what=f"{self.user}@{self.host}:{self.port}")


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    data_dir: Path
    pid: int | None = None
    info: ServerInfo | None = None

    def describe(self) -> str:
        if not self.running or self.info is None:
            return f"stopped (data in {self.data_dir})"
        return (
            f"running, pid {self.pid}, {self.info.url} (JDBC {self.info.jdbc_url}), data in {self.data_dir}"
        )


def connect(
    conninfo: str, *, autocommit: bool = False, what: str = "the source database"
) -> psycopg.Connection:
    """psycopg.connect with a clear error: names the role/host, never the password."""
    try:
        return psycopg.connect(conninfo, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as err:
        message = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        if "password authentication failed" in str(err):
            hint = "the password is wrong: check the KPassword secret (or the local secrets file)"
        elif "Connection refused" in str(err) or "No such file" in str(err):
            hint = "no server listens there: start it with `inventory-bronze db start`"
        else:
            hint = "check the KConnectionString/KUser/KPassword secrets and that the server runs"
        raise ConnectionFailed(f"Cannot connect to {what}: {message}; {hint}.") from None


# --- locations ------------------------------------------------------------------------------------------


def default_data_dir() -> Path:
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env) if env else project.VAR / "postgres"


def secrets_file(data_dir: Path | str | None = None) -> Path:
    """The local secrets file of a server: $INVENTORY_BRONZE_SECRETS_FILE; else var/secrets/local.json of
    the repo for the default server (the secrets chain's local file); else secrets.json in a server
    folder chosen with `data_dir`, so a side server never overwrites the default one's secrets."""
    env = os.environ.get(ENV_SECRETS_FILE)
    if env:
        return Path(env)
    if data_dir is None or Path(data_dir).resolve() == default_data_dir().resolve():
        return project.VAR / "secrets" / "local.json"
    return Path(data_dir).resolve() / "secrets.json"


def pg_bin_dir() -> Path:
    env = os.environ.get(ENV_PG_BIN)
    if env:
        return Path(env)
    # Locate pgserver's bundled binaries without importing it (its import has side effects).
    spec = importlib.util.find_spec("pgserver")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "postgres").is_file():
            return candidate
    raise ServerError(
        f"The PostgreSQL 16 binaries (package pgserver) are missing: run scripts/setup, or point {ENV_PG_BIN} "
        f"at a folder holding initdb, pg_ctl and postgres."
    )


# --- OS user --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _OsUser:
    name: str
    uid: int
    gid: int
    home: str

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()


def _os_user() -> _OsUser:
    """The OS user the server runs as: the current one, or (as root) `postgres` / `inventory-pg`."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return _OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)
    for name in ("postgres", FALLBACK_OS_USER):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return _OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir or "/")
    try:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_OS_USER],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as err:
        raise ServerError(
            f"PostgreSQL cannot run as root and creating the OS user '{FALLBACK_OS_USER}' failed ({err}): "
            f"create an unprivileged user named 'postgres' or '{FALLBACK_OS_USER}', or run as a normal user."
        ) from err
    entry = pwd.getpwnam(FALLBACK_OS_USER)
    return _OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid, "/")


_BIN_DIRS: dict[tuple[int, Path], Path] = {}


def server_bin_dir(user: _OsUser) -> Path:
    """The PostgreSQL programs as `user` can run them: the installed ones, or (when it cannot reach
    them, e.g. a virtualenv inside a private folder) a copy it can (server_access.reachable_binaries)."""
    bin_dir = pg_bin_dir()
    if user.is_self:
        return bin_dir
    if (user.uid, bin_dir) not in _BIN_DIRS:
        usable = server_access.others_can_reach(bin_dir.parent / "share" / "postgres.bki")
        if usable:
            try:
                _run_as(user, [str(bin_dir / "postgres"), "-V"], timeout=30)
            except (OSError, ServerError):
                usable = False
        if usable:
            _BIN_DIRS[(user.uid, bin_dir)] = bin_dir
        else:
            try:
                _BIN_DIRS[(user.uid, bin_dir)] = server_access.reachable_binaries(bin_dir)
            except OSError as err:
                raise ServerError(
                    f"The server's OS user '{user.name}' cannot run the PostgreSQL binaries in {bin_dir} and "
                    f"copying them under {server_access.SHARED_ROOT} failed ({err}): make that folder and its "
                    f"parents traversable by others (chmod o+x), or point {ENV_PG_BIN} at a copy it can run."
                ) from err
    return _BIN_DIRS[(user.uid, bin_dir)]


def _chown_tree(path: Path, user: _OsUser) -> None:
    if user.is_self:
        return
    os.chown(path, user.uid, user.gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), user.uid, user.gid, follow_symlinks=False)


def _run_as(user: _OsUser, args: list[str], *, timeout: float = _START_TIMEOUT_S) -> str:
    """Run a PostgreSQL program as the server's OS user; output goes through files (pg_ctl keeps pipes)."""
    kwargs: dict[str, object] = {}
    if not user.is_self:
        kwargs = {"user": user.uid, "group": user.gid, "extra_groups": []}
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "HOME": user.home or "/", "TZ": "UTC"}
    env.pop("PGDATA", None)
    with tempfile.TemporaryFile("w+") as out:
        try:
            proc = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd="/",
                timeout=timeout,
                start_new_session=True,
                check=False,
                **kwargs,  # type: ignore[arg-type]
            )
        except subprocess.TimeoutExpired as err:
            raise ServerError(f"{Path(args[0]).name} did not finish within {timeout:.0f} s.") from err
        out.seek(0)
        output = out.read()
    if proc.returncode != 0:
        raise ServerError(f"{Path(args[0]).name} failed (exit {proc.returncode}): {output.strip()[-2000:]}")
    return output


# --- state ----------------------------------------------------------------------------------------------


@dataclass
class _Paths:
    data_dir: Path
    # pgdata/, run/ and postgres.log: in data_dir, or where the server's OS user can reach them
    cluster: Path

    @classmethod
    def of(cls, data_dir: Path | str | None) -> _Paths:
        folder = Path(data_dir).resolve() if data_dir else default_data_dir().resolve()
        return cls(folder, server_access.cluster_dir(folder))

    @property
    def pgdata(self) -> Path:
        return self.cluster / "pgdata"

    @property
    def log(self) -> Path:
        return self.cluster / "postgres.log"

    @property
    def state(self) -> Path:
        return self.data_dir / "server.json"

    @property
    def lock(self) -> Path:
        return self.data_dir / ".lock"

    @property
    def socket_dir(self) -> Path:
        local = self.cluster / "run"
        # A Unix socket path must stay under ~107 bytes: fall back to a short folder under /tmp.
        if len(str(local / ".s.PGSQL.65535")) < 100:
            return local
        import hashlib

        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"inventory-pg-{digest}"


def _read_state(paths: _Paths) -> dict[str, object]:
    if not paths.state.is_file():
        return {}
    try:
        return json.loads(paths.state.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ServerError(
            f"The server state file {paths.state} is unreadable ({err}): delete it and run `db start` again "
            f"(a new password is then set)."
        ) from err


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    os.chmod(path, 0o600)


@contextlib.contextmanager
def _locked(paths: _Paths) -> Iterator[None]:
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    with open(paths.lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _postmaster_pid(paths: _Paths) -> int | None:
    """PID of the live postmaster of this cluster, or None."""
    pid_file = paths.pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return pid
    return pid if "postgres" in cmdline else None


def _running_port(paths: _Paths) -> int | None:
    """The port in postmaster.pid (its fourth line), or None."""
    try:
        return int(paths.pgdata.joinpath("postmaster.pid").read_text().splitlines()[3])
    except (OSError, ValueError, IndexError):
        return None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the postmaster binds it
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _info(paths: _Paths, state: dict[str, object]) -> ServerInfo:
    return ServerInfo(
        host=HOST,
        port=int(state["port"]),  # type: ignore[arg-type]
        database=DATABASE,
        user=str(state["user"]),
        password=str(state["password"]),
        data_dir=paths.data_dir,
        socket_dir=paths.socket_dir,
    )


# --- lifecycle ------------------------------------------------------------------------------------------


def _initdb(paths: _Paths, user: _OsUser) -> None:
    bin_dir = server_bin_dir(user)
    if paths.cluster != paths.data_dir:
        try:
            server_access.make_reachable_folder(paths.cluster)
        except OSError as err:
            raise ServerError(
                f"The server's OS user '{user.name}' cannot reach {paths.data_dir} and creating "
                f"{paths.cluster} for its cluster failed ({err}): choose a --data-dir others can traverse."
            ) from err
    paths.pgdata.mkdir(parents=True, exist_ok=True)
    paths.pgdata.chmod(0o700)
    _chown_tree(paths.pgdata, user)
    _run_as(
        user,
        [
            str(bin_dir / "initdb"),
            "-D",
            str(paths.pgdata),
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ],
        timeout=120,
    )
    conf = paths.pgdata / "postgresql.conf"
    with conf.open("a") as handle:
        handle.write("\ninclude_if_exists = 'inventory_bronze.conf'\n")


def _write_config(paths: _Paths, user: _OsUser, port: int) -> None:
    settings = {**SERVER_SETTINGS, "port": str(port), "unix_socket_directories": f"'{paths.socket_dir}'"}
    text = "# Written by inventory_devkit.postgres.server at every start; edit SERVER_SETTINGS instead.\n"
    text += "".join(f"{key} = {value}\n" for key, value in settings.items())
    (paths.pgdata / "inventory_bronze.conf").write_text(text)
    (paths.pgdata / "pg_hba.conf").write_text(PG_HBA)
    for name in ("inventory_bronze.conf", "pg_hba.conf"):
        target = paths.pgdata / name
        target.chmod(0o600)
        if not user.is_self:
            os.chown(target, user.uid, user.gid)


def _start_postmaster(paths: _Paths, user: _OsUser, port: int) -> None:
    socket_dir = paths.socket_dir
    socket_dir.mkdir(parents=True, exist_ok=True)
    socket_dir.chmod(0o700)
    if not user.is_self:
        os.chown(socket_dir, user.uid, user.gid)
    for stale in socket_dir.glob(".s.PGSQL.*"):
        with contextlib.suppress(OSError):
            stale.unlink()
    if not paths.log.exists():
        paths.log.touch()
    if not user.is_self:
        os.chown(paths.log, user.uid, user.gid)
    _write_config(paths, user, port)
    try:
        _run_as(
            user,
            [
                str(server_bin_dir(user) / "pg_ctl"),
                "-D",
                str(paths.pgdata),
                "-l",
                str(paths.log),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
    except ServerError as err:
        tail = paths.log.read_text(errors="replace")[-1500:] if paths.log.exists() else ""
        raise ServerError(f"{err}\nLast lines of {paths.log}:\n{tail}") from None


def _bootstrap(info: ServerInfo) -> None:
    """Create (or align) the login role, database "DE" and schema `tests`. Idempotent."""
    with connect(info.admin_conninfo("postgres"), autocommit=True, what="the local server (admin)") as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (info.user,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL("{} ROLE {} WITH LOGIN REPLICATION PASSWORD {}").format(
                sql.SQL(verb), sql.Identifier(info.user), sql.Literal(info.password)
            )
        )
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (info.database,)).fetchone():
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                    sql.Identifier(info.database), sql.Identifier(info.user)
                )
            )
    with connect(info.admin_conninfo(), autocommit=True, what="the local server (admin)") as conn:
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                sql.Identifier(info.schema), sql.Identifier(info.user)
            )
        )
        conn.execute(
            sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(
                sql.Identifier(info.schema), sql.Identifier(info.user)
            )
        )


def existing_secrets(target: Path) -> dict[str, object]:
    """What a local secrets file holds already (kept when the server's secrets are written). A file that is
    no JSON object is refused, never rewritten: it may hold the PII key, and losing that loses the data."""
    if not target.is_file():
        return {}
    try:
        existing = json.loads(target.read_text())
    except (OSError, ValueError) as err:
        raise ServerError(
            f"The secrets file {target} is unreadable or not JSON ({err}): fix it (it may hold the PII key) "
            f"or move it away, then run again; nothing was changed."
        ) from None
    if not isinstance(existing, dict):
        raise ServerError(
            f"The secrets file {target} must hold one JSON object of secret name -> value: fix it or move it "
            f"away, then run again; nothing was changed."
        )
    return existing


def write_secrets_file(info: ServerInfo, path: Path | None = None) -> Path:
    """Write the seed's secret names for local runs (mode 600): KConnectionString, KUser, KPassword; the
    file's other secrets (e.g. the PII key) are kept, and a malformed file is refused (`existing_secrets`)."""
    target = path or secrets_file()
    payload = existing_secrets(target)
    payload.update({SECRET_URL: info.jdbc_url, SECRET_USER: info.user, SECRET_PASSWORD: info.password})
    _write_private(target, json.dumps(payload, indent=2) + "\n")
    return target


def _wait_ready(info: ServerInfo) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(info.admin_conninfo("postgres"), connect_timeout=5) as conn:
                conn.execute("SELECT 1")
                return
        except psycopg.OperationalError as err:
            if time.monotonic() > deadline:
                raise ServerError(
                    f"The local server did not accept connections within {_START_TIMEOUT_S} s ({err}): "
                    f"see its log in {info.data_dir}/postgres.log."
                ) from None
            time.sleep(0.2)


def holds_server(data_dir: Path | str) -> bool:
    """Whether `data_dir` holds a local server's cluster (initialised by `db start`)."""
    return (_Paths.of(data_dir).pgdata / "PG_VERSION").is_file()


def ensure_server(data_dir: Path | str | None = None) -> ServerInfo:
    """Start the local server if it is not running (initialising it on first use) and return how to reach
    it. Idempotent: when it runs already, returns its info. Also writes the local secrets file."""
    folder = Path(data_dir).resolve() if data_dir else default_data_dir().resolve()
    existing_secrets(secrets_file(folder))  # a malformed secrets file stops us before anything runs
    folder.mkdir(parents=True, exist_ok=True)
    paths = _Paths.of(folder)  # where the cluster goes depends on who can reach the folder just made
    with _locked(paths):
        user = _os_user()
        state = _read_state(paths)
        if not state.get("password"):
            state = {"user": LOGIN_ROLE, "password": secrets.token_urlsafe(24), "port": None}
        if not (paths.pgdata / "PG_VERSION").is_file():
            _initdb(paths, user)
        pid = _postmaster_pid(paths)
        if pid is None:
            port = state.get("port")
            if not isinstance(port, int) or not _port_free(port):
                port = _free_port()
            state["port"] = port
            _write_private(paths.state, json.dumps(state, indent=2) + "\n")
            _start_postmaster(paths, user, port)
            info = _info(paths, state)
        else:  # running already: keep its port, apply the settings that need no restart
            state["port"] = _running_port(paths) or state.get("port")
            _write_private(paths.state, json.dumps(state, indent=2) + "\n")
            _write_config(paths, user, int(state["port"]))  # type: ignore[arg-type]
            info = _info(paths, state)
            with connect(
                info.admin_conninfo("postgres"), autocommit=True, what="the local server (admin)"
            ) as conn:
                conn.execute("SELECT pg_reload_conf()")
        _wait_ready(info)
        _bootstrap(info)
        write_secrets_file(info, secrets_file(paths.data_dir))
        return info


def server_status(data_dir: Path | str | None = None) -> ServerStatus:
    paths = _Paths.of(data_dir)
    pid = _postmaster_pid(paths)
    state = _read_state(paths)
    if pid is None or not state.get("port"):
        return ServerStatus(running=False, data_dir=paths.data_dir)
    return ServerStatus(running=True, data_dir=paths.data_dir, pid=pid, info=_info(paths, state))


def server_info(data_dir: Path | str | None = None) -> ServerInfo:
    """Info of the running server, without starting it; ServerNotRunning when it is stopped."""
    status = server_status(data_dir)
    if not status.running or status.info is None:
        raise ServerNotRunning(
            f"The local PostgreSQL server in {status.data_dir} is not running: start it with "
            f"`inventory-bronze db start`."
        )
    return status.info


#: how long a fast shutdown may take before `stop_server` makes it immediate
FAST_STOP_TIMEOUT_S = 20


def stop_server(data_dir: Path | str | None = None) -> bool:
    """Stop the server (fast shutdown). Returns False when it was not running.

    A fast shutdown waits until every logical replication client confirmed all the WAL sent to it; a
    capture stream confirms only what its consumer committed, so an idle one can hold the shutdown. After
    FAST_STOP_TIMEOUT_S the shutdown is made immediate (crash recovery at the next start; the slots keep
    their positions, the capture streams nothing twice)."""
    paths = _Paths.of(data_dir)
    with _locked(paths):
        pid = _postmaster_pid(paths)
        if pid is None:
            return False
        user = _os_user()
        pg_ctl = [str(server_bin_dir(user) / "pg_ctl"), "-D", str(paths.pgdata), "-w"]
        try:
            _run_as(user, [*pg_ctl, "-t", str(FAST_STOP_TIMEOUT_S), "-m", "fast", "stop"])
        except ServerError:
            if _postmaster_pid(paths) is None:
                return True
            _run_as(user, [*pg_ctl, "-m", "immediate", "stop"])
        return True
