"""Reconciliation after an update: per table, the source's keys against bronze's and quarantine's.

A source key must be in bronze or in quarantine (nothing lost); a bronze key must be in the source
(nothing kept that the source deleted); no key twice (nothing duplicated). The key checksums (count and
sum of the keys) of source and bronze+quarantine make the comparison cheap to record and audit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inventory_bronze import bronze
from inventory_bronze.config import target_name
from inventory_bronze.source.schema import table as declared


@dataclass(frozen=True)
class Reconciliation:
    table: str
    source_rows: int
    bronze_rows: int
    quarantined_only: int  # source keys held back by quarantine, not in bronze
    missing: int  # source keys neither in bronze nor in quarantine
    extra: int  # bronze keys the source no longer has
    duplicates: int  # keys twice in bronze
    source_checksum: int
    bronze_checksum: int

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.extra == 0 and self.duplicates == 0

    @property
    def status(self) -> str:
        return "MATCH" if self.ok else "MISMATCH"


def _delta(spark: Any, path: Path) -> Any:
    df = spark.read.format("delta").load(str(path))
    return df.where("__END_AT IS NULL") if "__END_AT" in df.columns else df


def table_paths(storage: Path) -> dict[str, Path]:
    """Dataset name -> Delta folder, over every pipeline under `storage`."""
    return {p.name: p for p in Path(storage).glob("*/tables/*") if (p / "_delta_log").is_dir()}


def reconcile(spark: Any, storage: Path, conn: Any, tables: list[str] | None = None) -> list[Reconciliation]:
    paths = table_paths(storage)
    out = []
    for table in tables or bronze.configuration(spark).table_names:
        key = declared(table).primary_key[0]
        source = [r[0] for r in conn.execute(f'SELECT "{key}" FROM tests.{table}').fetchall()]
        bz = [r[0] for r in _delta(spark, paths[target_name(table)]).select(key).collect()]
        quarantine_path = paths.get(f"bz_{table}_quarantine")
        quarantined = (
            {r[0] for r in spark.read.format("delta").load(str(quarantine_path)).select(key).collect()}
            if quarantine_path
            else set()
        )
        source_set, bz_set = set(source), set(bz)
        held_back = (source_set - bz_set) & quarantined
        out.append(
            Reconciliation(
                table=table,
                source_rows=len(source),
                bronze_rows=len(bz),
                quarantined_only=len(held_back),
                missing=len(source_set - bz_set - quarantined),
                extra=len(bz_set - source_set),
                duplicates=len(bz) - len(bz_set),
                source_checksum=sum(source_set),
                bronze_checksum=sum(bz_set) + sum(held_back),
            )
        )
    return out


def format_table(rows: list[Reconciliation]) -> str:
    head = f"{'table':<16}{'source':>10}{'bronze':>10}{'quarant.':>10}{'missing':>9}{'extra':>7}{'dup':>5}  status"
    lines = [head]
    for r in rows:
        lines.append(
            f"{r.table:<16}{r.source_rows:>10,}{r.bronze_rows:>10,}{r.quarantined_only:>10,}"
            f"{r.missing:>9,}{r.extra:>7,}{r.duplicates:>5,}  {r.status}"
        )
    return "\n".join(lines)
