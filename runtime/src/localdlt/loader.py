"""Load pipeline source files into a `PipelineGraph`.

Each file runs as its own module with `import dlt` and `from pyspark import pipelines as dp` resolving to
the local runtime's API and `spark` as a global, as on Databricks. `sys.modules["dlt"]`,
`sys.modules["pyspark.pipelines"]` and the `pipelines` attribute of `pyspark` are set only while pipeline
files load and restored after (also when loading fails), so nothing else in the process sees them.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyspark

import localdlt.api as api
import localdlt.api_pipelines as api_pipelines
import localdlt.context as context
from localdlt.errors import DefinitionError, PipelineError, PipelineLoadError
from localdlt.graph import PipelineGraph


def source_files(paths: Iterable[str | Path]) -> list[Path]:
    """The .py files of the given files and folders (recursively), in a stable order."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
            files.extend(p for p in found if p.name != "__init__.py")
        elif path.is_file():
            if path.suffix != ".py":
                raise PipelineLoadError(f"Pipeline source {path} is not a Python file (.py).")
            files.append(path)
        else:
            raise PipelineLoadError(f"Pipeline source {path} does not exist.")
    if not files:
        raise PipelineLoadError(f"No pipeline source files (.py) found in {', '.join(map(str, paths))}.")
    seen: set[Path] = set()
    return [f for f in (p.resolve() for p in files) if not (f in seen or seen.add(f))]


_MISSING = object()


@contextmanager
def dlt_module() -> Iterator[None]:
    """Make `import dlt` and `from pyspark import pipelines as dp` give the local runtime's API while
    pipeline code runs."""
    previous = {name: sys.modules.get(name, _MISSING) for name in ("dlt", "pyspark.pipelines")}
    previous_attr = pyspark.__dict__.get("pipelines", _MISSING)
    sys.modules["dlt"] = api
    sys.modules["pyspark.pipelines"] = api_pipelines
    pyspark.pipelines = api_pipelines  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for name, module in previous.items():
            if module is _MISSING:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module  # type: ignore[assignment]
        if previous_attr is _MISSING:
            pyspark.__dict__.pop("pipelines", None)
        else:
            pyspark.pipelines = previous_attr  # type: ignore[attr-defined]


def load(
    paths: Iterable[str | Path], spark: Any, errors: list[DefinitionError] | None = None
) -> PipelineGraph:
    """Import every pipeline file; their decorators fill and return the graph.

    With an `errors` list (validation) nothing is raised for a wrong definition: each file that fails to
    import, each duplicate name and each flow without a valid target is appended to it and the loading goes
    on with the next file; the graph then holds what could be loaded (see `PipelineGraph.errors`)."""
    graph = PipelineGraph(errors=errors)
    files = source_files(paths)
    extra_paths = sorted({str(f.parent) for f in files})
    added = [p for p in extra_paths if p not in sys.path]
    sys.path[:0] = added
    try:
        with dlt_module():
            for index, file in enumerate(files):
                try:
                    _load_file(graph, file, index, spark)
                except DefinitionError as err:
                    graph.fail(err)
    finally:
        for p in added:
            if p in sys.path:
                sys.path.remove(p)
    if not graph.datasets and not errors:  # as Databricks refuses it (NO_TABLES_IN_PIPELINE)
        names = ", ".join(str(f) for f in files) or "no Python files"
        raise PipelineLoadError(
            f"The pipeline defines no dataset (NO_TABLES_IN_PIPELINE): its source ({names}) declares no table "
            f"or view with the dlt decorators or functions; check the paths given."
        )
    graph.validate_targets()
    return graph


def _load_file(graph: PipelineGraph, file: Path, index: int, spark: Any) -> None:
    module_name = f"localdlt_pipeline_{index}_{file.stem}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise PipelineLoadError(f"Cannot load pipeline source {file}.")
    module = importlib.util.module_from_spec(spec)
    module.__dict__["spark"] = spark
    try:
        with context.defining(graph, str(file)):
            spec.loader.exec_module(module)
    except PipelineError as err:
        if graph.errors is None or str(file) in str(err):
            raise
        # collecting: the message gets the file it came from
        raise PipelineLoadError(f"{_where(file, err)}: {err}") from err
    except Exception as err:
        raise PipelineLoadError(
            f"Pipeline source {_where(file, err)} failed to import: {type(err).__name__}: {err}"
        ) from err


def _where(file: Path, err: BaseException) -> str:
    """`file:line` of the last frame of `err`'s traceback in `file`, else `file`."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == str(file)]
    return f"{file}:{frames[-1].lineno}" if frames else str(file)
