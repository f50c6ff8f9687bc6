"""`inventory-bronze db start | stop | status`: the local PostgreSQL 16 source server."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_EPILOG = (
    "The server keeps its files under var/postgres of the repository (or --data-dir, or "
    "$INVENTORY_BRONZE_PG_DIR), listens on 127.0.0.1 on a free port, has wal_level=logical, database "
    '"DE" with schema tests, and a login role whose password is in the local secrets file '
    "(var/secrets/local.json, or secrets.json in a --data-dir folder, or $INVENTORY_BRONZE_SECRETS_FILE: "
    "KConnectionString, KUser, KPassword). "
    "Passwords are never printed."
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "db",
        help="start, stop or show the local PostgreSQL source server",
        description="The local PostgreSQL 16 source server (embedded binaries, no install needed; works "
        "as root by running the server as an unprivileged user).",
        epilog=_EPILOG,
    )
    db_sub = parser.add_subparsers(dest="db_command", metavar="SUBCOMMAND")
    start = db_sub.add_parser(
        "start",
        help="start the server (initialise it on first use); idempotent",
        description="Start the server, initialising the cluster, role, database and schema on first use. "
        "When it runs already, only prints its URL. Writes the local secrets file.",
        epilog=_EPILOG,
    )
    stop = db_sub.add_parser(
        "stop", help="stop the server (fast shutdown)", description="Stop the server.", epilog=_EPILOG
    )
    status = db_sub.add_parser(
        "status",
        help="show whether the server runs and its URL",
        description="Show whether the server runs, its pid and URL. Exit status 1 when it is stopped.",
        epilog=_EPILOG,
    )
    for p in (start, stop, status):
        p.add_argument(
            "--data-dir", type=Path, help="server folder (default: var/postgres of the repository)"
        )
    start.set_defaults(handler=_start)
    stop.set_defaults(handler=_stop)
    status.set_defaults(handler=_status)
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])


def _start(args: argparse.Namespace) -> int:
    from inventory_bronze.source.errors import SourceError
    from inventory_devkit.postgres.server import ensure_server, secrets_file
    from inventory_devkit.postgres.server_access import cluster_dir

    try:
        info = ensure_server(args.data_dir)
    except SourceError as err:
        print(f"db start: {err}", file=sys.stderr)
        return 1
    print(f"running: {info.url}")
    print(f"JDBC:    {info.jdbc_url}")
    print(f"secrets: {secrets_file(args.data_dir)} (KConnectionString, KUser, KPassword)")
    if (cluster := cluster_dir(info.data_dir)) != info.data_dir:
        print(f"cluster: {cluster} (the server's OS user cannot reach {info.data_dir})")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from inventory_bronze.source.errors import SourceError
    from inventory_devkit.postgres.server import stop_server

    try:
        stopped = stop_server(args.data_dir)
    except SourceError as err:
        print(f"db stop: {err}", file=sys.stderr)
        return 1
    print("stopped" if stopped else "not running")
    return 0


def _status(args: argparse.Namespace) -> int:
    from inventory_devkit.postgres.server import server_status

    status = server_status(args.data_dir)
    print(status.describe())
    return 0 if status.running else 1
