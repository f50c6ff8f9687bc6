"""How a sub-command ends: the runtime's errors (`PipelineError`: they name the file, dataset or setting at
fault) become one line `error: ...` and exit status 1, a wrong command line (`UsageError`) exit status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from localdlt.errors import PipelineError

Handler = Callable[[argparse.Namespace], int]


class UsageError(PipelineError):
    """The command line is wrong (exit status 2)."""


def handled(handler: Handler) -> Handler:
    """`handler` with the runtime's errors turned into one line on stderr and an exit status."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(handler(args) or 0)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except PipelineError as err:
            print(f"error: {' '.join(str(err).split()) or type(err).__name__}", file=sys.stderr)
            return 2 if isinstance(err, UsageError) else 1

    return run
