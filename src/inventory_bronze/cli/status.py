"""`inventory-bronze status`: the last updates of the local pipelines and each flow's state and figures,
like the pipeline UI's list (read from the event logs; works while an update runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from inventory_bronze.cli import options

DEFAULT_STORAGE = options.local_storage()


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "status",
        help="the last updates and each flow's state and figures",
        description="List the last updates of every pipeline under STORAGE (state, start, duration) and, "
        "per update, each flow: state, rows written/upserted/deleted, dropped, expectations failed.",
    )
    parser.add_argument("--storage", type=Path, default=DEFAULT_STORAGE, help=f"default {DEFAULT_STORAGE}")
    parser.add_argument("--last", type=int, default=3, metavar="N", help="updates per pipeline (default 3)")
    parser.set_defaults(handler=_status)


def _status(args: argparse.Namespace) -> int:
    from inventory_bronze.audit.status import render
    from inventory_bronze.audit.store import event_log_paths
    from inventory_bronze.spark_session import get_spark

    if not event_log_paths(args.storage):
        print(f"no pipeline event logs under {args.storage}")
        return 1
    print(render(get_spark("inventory-bronze-status"), args.storage, args.last))
    return 0
