"""Load pipeline source files into a `PipelineGraph`.

Each file runs as its own module with `import dlt` and `from pyspark import pipelines as dp` resolving to
the local runtime's API and `spark` as a global, as on Databricks. `sys.modules["dlt"]`,
`sys.modules["pyspark.pipelines"]` and the `pipelines` attribute of `pyspark` are set only while pipeline
files load and restored after (also when loading fails), so nothing else in the process sees them.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
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
def dlt_module(graph: PipelineGraph | None = None) -> Iterator[None]:
    """Make `import dlt` and `from pyspark import pipelines as dp` give the local runtime's API while
    pipeline code runs; for a `graph` collecting its errors, an API whose wrong calls are recorded there
    (`_tolerant`) so that a file's later definitions are still looked at."""
    previous = {name: sys.modules.get(name, _MISSING) for name in ("dlt", "pyspark.pipelines")}
    previous_attr = pyspark.__dict__.get("pipelines", _MISSING)
    dlt, dp = (api, api_pipelines) if graph is None or graph.errors is None else _tolerant_api(graph)
    sys.modules["dlt"] = dlt
    sys.modules["pyspark.pipelines"] = dp
    pyspark.pipelines = dp  # type: ignore[attr-defined]
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
        with dlt_module(graph):
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


_READS = frozenset({"read", "read_stream"})  # called by query functions, whose errors analysis reports


def _tolerant_api(graph: PipelineGraph) -> tuple[ModuleType, ModuleType]:
    """`dlt` and `pyspark.pipelines` for validation: each function records a wrong definition in `graph`
    (with the file and line of the call) instead of raising it, and what it was given stays as it was."""
    modules = []
    for module in (api, api_pipelines):
        tolerant = ModuleType(module.__name__, module.__doc__)
        for name in module.__all__:
            fn = getattr(module, name)
            setattr(tolerant, name, fn if name in _READS else _tolerant(fn, graph))
        tolerant.__all__ = list(module.__all__)  # type: ignore[attr-defined]
        modules.append(tolerant)
    return modules[0], modules[1]


def _tolerant(fn: Callable[..., Any], graph: PipelineGraph) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
        except DefinitionError as err:
            if context.current_file() is None:  # not loading a file (a query function runs): as it is
                raise
            caller = sys._getframe(1)
            graph.fail(PipelineLoadError(f"{caller.f_code.co_filename}:{caller.f_lineno}: {err}"))
            if len(args) == 1 and callable(args[0]) and not kwargs:
                return args[0]  # a decorator used bare: the function stays as it was
            return lambda *inner, **_: inner[0] if len(inner) == 1 and callable(inner[0]) else None
        if callable(result) and not any(result is a for a in args):
            return _tolerant(result, graph)  # a decorator factory's decorator: tolerant too
        return result

    return call


def _where(file: Path, err: BaseException) -> str:
    """`file:line` of the last frame of `err`'s traceback in `file`, else `file`."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == str(file)]
    return f"{file}:{frames[-1].lineno}" if frames else str(file)
