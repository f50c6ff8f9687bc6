"""`PipelineRun`: write small pipeline files and run them through the local runtime in-process."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localdlt import UpdateOptions, UpdateResult, run_update
from localdlt.progress import ConsoleProgress


@dataclass
class PipelineRun:
    spark: Any
    root: Path

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    def write(self, name: str, code: str) -> Path:
        path = self.root / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("import dlt\nfrom pyspark.sql import functions as F\n" + textwrap.dedent(code))
        return path

    def run(self, *files: Path | str, conf: dict[str, str] | None = None, **options: Any) -> UpdateResult:
        paths = [str(f) for f in files] or [str(self.root / "src")]
        return run_update(
            paths,
            self.storage,
            conf=conf,
            options=UpdateOptions(**options),
            spark=self.spark,
            progress=ConsoleProgress(quiet=True),
        )

    def table(self, name: str) -> Any:
        return self.spark.read.format("delta").load(str(self.storage / "tables" / name))

    def rows(self, name: str, *cols: str) -> list[tuple[Any, ...]]:
        df = self.table(name)
        df = df.select(*cols) if cols else df
        return sorted(tuple(r) for r in df.collect())

    def events(self) -> Any:
        return self.spark.read.format("delta").load(str(self.storage / "system" / "events"))

    def source(self, name: str) -> Path:
        """A Delta folder tests append to, used as a streaming source."""
        return self.root / "sources" / name

    def append_source(self, name: str, rows: list[tuple[Any, ...]], schema: str) -> str:
        path = str(self.source(name))
        self.spark.createDataFrame(rows, schema).write.format("delta").mode("append").save(path)
        return path
