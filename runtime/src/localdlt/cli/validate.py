"""`localdlt validate`: check a pipeline's definitions without running it, listing every error."""

from __future__ import annotations

import argparse
import sys

import localdlt.cli.options as opt
from localdlt.cli.errors import handled
from localdlt.cli.source import resolve


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "validate",
        help="check a pipeline without running it, listing every error",
        description="Load every source file of the pipeline (PATH..., or --bundle DIR --pipeline KEY) and "
        "analyse its whole graph without running any flow or writing anything; print every error found, "
        "one line each naming the file and dataset (exit status 1), or a one-line summary (exit status 0).",
    )
    opt.add_source(parser)
    parser.add_argument(
        "--storage",
        type=opt.storage_folder,
        metavar="DIR",
        help="the pipeline's storage, read only: tables written before give their schemas",
    )
    parser.set_defaults(handler=handled(_validate))


def _validate(args: argparse.Namespace) -> int:
    from localdlt.environment import install_environment
    from localdlt.session import get_spark
    from localdlt.validate import validate

    source = resolve(args)
    install_environment(source.dependencies, source.key)
    result = validate(source.paths, source.conf, get_spark("localdlt", jit="quick"), args.storage)
    for error in result.errors:
        print(f"error: {error}", file=sys.stderr)
    if not result.ok:
        print(f"{len(result.errors)} error(s): the pipeline is not valid", file=sys.stderr)
        return 1
    print(f"valid: {result.summary()}")
    return 0
