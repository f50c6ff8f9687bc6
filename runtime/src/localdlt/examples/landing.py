"""Write one batch of landing files for the ten-table example pipeline (orders and order lines as JSON
lines, a few of them bad on purpose). Deterministic for a given batch number.

    python -m localdlt.examples.landing DIR [--orders N] [--batch K]
"""

from __future__ import annotations

import argparse
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

STATUSES = ("new", "paid", "shipped", "cancelled")


def write_batch(landing: str | Path, orders: int = 10_000, batch: int | None = None) -> dict[str, int]:
    """Append one batch; returns rows written per folder. `batch` defaults to the next free number."""
    root = Path(landing)
    (root / "orders").mkdir(parents=True, exist_ok=True)
    (root / "order_lines").mkdir(parents=True, exist_ok=True)
    if batch is None:
        batch = len(list((root / "orders").glob("batch-*.json")))
    rng = random.Random(batch)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(days=batch)
    first_id = batch * orders + 1
    order_rows, line_rows = [], []
    for order_id in range(first_id, first_id + orders):
        bad = rng.random() < 0.02
        order_rows.append(
            {
                "order_id": order_id,
                "customer_id": None if bad else rng.randint(1, 2000),
                "ordered_at": (start + timedelta(seconds=rng.randint(0, 86_399))).isoformat(),
                "status": "unknown" if rng.random() < 0.01 else rng.choice(STATUSES),
            }
        )
        for line_no in range(1, rng.randint(1, 5) + 1):
            line_rows.append(
                {
                    "order_id": order_id,
                    "line_no": line_no,
                    "product_id": rng.randint(1, 500),
                    "quantity": -1 if rng.random() < 0.01 else rng.randint(1, 20),
                    "unit_price": round(rng.uniform(0.5, 500), 2),
                }
            )
    for folder, rows in (("orders", order_rows), ("order_lines", line_rows)):
        tmp = root / folder / f".batch-{batch:05d}.json.tmp"
        tmp.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        tmp.rename(root / folder / f"batch-{batch:05d}.json")  # appear whole, never half-written
    return {"orders": len(order_rows), "order_lines": len(line_rows)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("landing", help="landing folder (orders/ and order_lines/ inside)")
    parser.add_argument("--orders", type=int, default=10_000, help="orders in the batch (default 10000)")
    parser.add_argument("--batch", type=int, help="batch number (default: the next one)")
    args = parser.parse_args(argv)
    written = write_batch(args.landing, args.orders, args.batch)
    print(", ".join(f"{n:,} {k}" for k, n in written.items()), f"written to {args.landing}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
