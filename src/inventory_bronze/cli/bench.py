"""`inventory-bronze bench`: the bronze layer's benchmark (bench/bench_bronze.py) against the floor
(PostgreSQL COPY) and the seed's approach (Spark JDBC, one partition), on a PostgreSQL of its own."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from types import ModuleType

from inventory_devkit import project

SCRIPT = project.ROOT / "bench" / "bench_bronze.py"


def _script() -> ModuleType:
    if "bench_bronze" in sys.modules:
        return sys.modules["bench_bronze"]
    spec = importlib.util.spec_from_file_location("bench_bronze", SCRIPT)
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with the repo
        raise FileNotFoundError(f"The benchmark script {SCRIPT} is missing.")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_bronze"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "bench",
        help="benchmark the bronze layer against PostgreSQL COPY and the seed's JDBC approach",
        description="One run on one generated dataset (its own PostgreSQL under var/bench-bronze): the floor "
        "(COPY TO STDOUT, one and two streams), the seed's approach (Spark JDBC, one partition), our initial "
        "load, a 10 k-change incremental update, CDC lag in continuous mode, peak memory and CPU per "
        "million rows, as ratios, with the goals. See bench/bench_bronze.py.",
    )
    if SCRIPT.is_file():
        _script().add_arguments(parser)
    parser.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    return int(_script().run(args))
