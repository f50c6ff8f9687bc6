"""Run the ten-table example pipeline twice (initial + incremental) in one process and print what the
event log says about it. `scripts/demo` calls this."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import localdlt.monitoring as monitoring
from localdlt.examples.landing import write_batch
from localdlt.runner import run_update
from localdlt.session import get_spark

PIPELINE = Path(__file__).resolve().parents[3] / "examples" / "ten_tables" / "dlt"


def main(argv: list[str]) -> int:
    storage = Path(argv[0] if argv else "var/example").resolve()
    landing = storage / "landing"
    started = time.monotonic()
    spark = get_spark("localdlt-example")
    print(f"Spark ready in {time.monotonic() - started:.1f}s")
    conf = {"example.landing": str(landing)}
    ok = True
    for step in ("initial", "incremental"):
        written = write_batch(landing, orders=10_000)
        print(f"\n== {step} update: landed {written['orders']:,} orders, {written['order_lines']:,} lines")
        result = run_update(
            [PIPELINE], storage / "pipeline", conf=conf, spark=spark, pipeline_name="ten_tables"
        )
        ok = ok and result.ok
    events = str(storage / "pipeline" / "system" / "events")
    print("\nData quality of the last update (Databricks' monitoring query, unchanged):")
    monitoring.run(spark, events, "data_quality").orderBy("dataset", "expectation").show(truncate=False)
    print(f"Tables: {storage / 'pipeline' / 'tables'}\nEvent log: {events}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
