"""`inventory-bronze capture setup | drop | status`: publications and replication slots of the log-based
change capture (one pgoutput slot and one publication per captured table)."""

from __future__ import annotations

import argparse
import sys

from inventory_bronze.source.capture_pgoutput import lsn_text
from inventory_bronze.source.capture_slot import CaptureNames

_EPILOG = (
    "The connection comes from the secrets chain (Databricks scope, Azure Key Vault when "
    "INVENTORY_BRONZE_KEYVAULT_URL is set, INVENTORY_BRONZE_SECRET_<NAME>, then the local secrets file "
    "that `inventory-bronze db start` writes). Streams read the slot with "
    "spark.readStream.format('pgcdc').option('table', 'tests.orders')."
)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--table",
        action="append",
        metavar="SCHEMA.TABLE",
        help="table to act on (repeatable; default: every table conf/tables.yml reads through log-based "
        "capture, patterns cdc and micro_batch)",
    )
    parser.add_argument("--slot", help="slot name (only with one --table; default ib_cdc_<table>)")
    parser.add_argument(
        "--publication", help="publication name (only with one --table; default ib_cdc_<table>)"
    )


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "capture",
        help="set up, drop or show the log-based change capture (slots, publications)",
        description="Log-based change capture of PostgreSQL tables through logical decoding (pgoutput).",
        epilog=_EPILOG,
    )
    cap_sub = parser.add_subparsers(dest="capture_command", metavar="SUBCOMMAND")
    setup = cap_sub.add_parser(
        "setup",
        help="create the publication and replication slot of each table (idempotent)",
        description="Check each table's REPLICA IDENTITY, then create its publication and pgoutput slot. "
        "Idempotent. The slot's consistent point is where a new stream starts (after its snapshot).",
        epilog=_EPILOG,
    )
    drop = cap_sub.add_parser(
        "drop",
        help="drop the replication slot and publication of each table",
        description="Drop each table's slot (which pins WAL on the server) and publication. Streams "
        "reading them fail with a clear error afterwards; set up again and restart them from a new "
        "checkpoint to recover.",
        epilog=_EPILOG,
    )
    status = cap_sub.add_parser(
        "status",
        help="show each table's slot, publication and replica identity",
        description="Show each table's slot (confirmed LSN, WAL retained, invalidation), publication and "
        "whether its REPLICA IDENTITY suits the capture. Exit status 1 when something needs attention.",
        epilog=_EPILOG,
    )
    for p in (setup, drop, status):
        _add_common(p)
    setup.set_defaults(handler=_setup)
    drop.set_defaults(handler=_drop)
    status.set_defaults(handler=_status)
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])


def _names(args: argparse.Namespace) -> list[CaptureNames]:
    from inventory_bronze.cli import options

    tables = args.table or options.bronze_config(None).capture_tables
    if (args.slot or args.publication) and len(tables) != 1:
        raise SystemExit("--slot and --publication need exactly one --table")
    return [CaptureNames.for_table(t, args.slot, args.publication) for t in tables]


def _connect():  # noqa: ANN202
    from inventory_bronze.secrets import source_connection
    from inventory_bronze.source.capture_connection import open_connection

    return open_connection(source_connection())


def _run(args: argparse.Namespace, action) -> int:  # noqa: ANN001
    from inventory_bronze.source.errors import SourceError

    try:
        names = _names(args)
        with _connect() as conn:
            return action(conn, names)
    except SourceError as err:
        print(f"capture {args.capture_command}: {err}", file=sys.stderr)
        return 1


def _setup(args: argparse.Namespace) -> int:
    from inventory_bronze.source.capture_slot import setup_capture

    def action(conn, names: list[CaptureNames]) -> int:  # noqa: ANN001
        for n in names:
            result = setup_capture(conn, n)
            what = "created" if result.created_slot else "exists"
            print(
                f"{n.table}: publication {n.publication} ({'created' if result.created_publication else 'exists'}), "
                f"slot {n.slot} ({what}, consistent point {lsn_text(result.consistent_lsn)})"
            )
        return 0

    return _run(args, action)


def _drop(args: argparse.Namespace) -> int:
    from inventory_bronze.source.capture_slot import drop_capture

    def action(conn, names: list[CaptureNames]) -> int:  # noqa: ANN001
        for n in names:
            slot, pub = drop_capture(conn, n)
            print(
                f"{n.table}: slot {n.slot} {'dropped' if slot else 'absent'}, "
                f"publication {n.publication} {'dropped' if pub else 'absent'}"
            )
        return 0

    return _run(args, action)


def _status(args: argparse.Namespace) -> int:
    from inventory_bronze.source.capture_slot import capture_status

    def action(conn, names: list[CaptureNames]) -> int:  # noqa: ANN001
        bad = 0
        for n in names:
            status = capture_status(conn, n)
            print(f"{n.table}:")
            for key in ("slot", "publication", "replica_identity"):
                print(f"  {key}: {status[key]}")
            text = " ".join(str(v) for v in status.values())
            bad += int("missing" in text or "INVALIDATED" in text or status["replica_identity"] != "ok")
        return 1 if bad else 0

    return _run(args, action)
