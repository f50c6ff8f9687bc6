"""`python -m localdlt`: the `localdlt` command."""

import sys

from localdlt.cli import main

sys.exit(main(prog="python -m localdlt"))
