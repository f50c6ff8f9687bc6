"""`inventory-bronze dlt run`: the product's alias of `localdlt run` (the local runtime's command), with
the checkout's jars (PostgreSQL's JDBC driver among them) loaded by the session it starts."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from inventory_bronze.spark_session import use_checkout_jars
    from localdlt.cli import add_run_command

    parser = sub.add_parser(
        "dlt",
        help="run Databricks declarative-pipeline (dlt) source files locally",
        description="The local runtime for the dlt API (localdlt): real Spark, real Delta Lake.",
    )
    add_run_command(parser.add_subparsers(dest="dlt_command", metavar="SUBCOMMAND"), use_checkout_jars)
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)
