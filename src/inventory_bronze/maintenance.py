"""Table maintenance: OPTIMIZE (compaction; liquid clustering where the table is clustered) and VACUUM
(files no longer referenced and older than the retention, 168 hours by default, as the seed asks)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inventory_bronze.errors import ConfigError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Maintained:
    table: str
    optimized_files_removed: int
    vacuumed: bool


def local_tables(storage: Path) -> list[str]:
    """Delta folders of the bronze tables (bz_*) under the local pipeline storage."""
    return sorted(str(p) for p in Path(storage).glob("*/tables/bz_*") if (p / "_delta_log").is_dir())


def catalog_tables(spark: Any, catalog: str, schema: str) -> list[str]:
    """`catalog.schema.bz_*` tables (on Databricks)."""
    for part, what in ((catalog, "catalog"), (schema, "schema")):
        if not _IDENT.match(part):
            raise ConfigError(f"--{what} {part!r} is not a plain identifier.")
    rows = spark.sql(f"SHOW TABLES IN `{catalog}`.`{schema}` LIKE 'bz_*'").collect()
    return [f"`{catalog}`.`{schema}`.`{r.tableName}`" for r in rows]


def maintain(spark: Any, tables: list[str], retain_hours: int = 168, echo: Any = print) -> list[Maintained]:
    if retain_hours < 0:
        raise ConfigError(f"--vacuum-retain-hours must be >= 0, got {retain_hours}.")
    done = []
    for table in tables:
        ref = table if table.startswith("`") else f"delta.`{table.replace('`', '``')}`"
        metrics = spark.sql(f"OPTIMIZE {ref}").first()
        removed = int(metrics.metrics.numFilesRemoved) if metrics is not None else 0
        spark.sql(f"VACUUM {ref} RETAIN {int(retain_hours)} HOURS")
        echo(f"  {table}: OPTIMIZE removed {removed} file(s); VACUUM retain {retain_hours} h")
        done.append(Maintained(table, removed, True))
    return done
