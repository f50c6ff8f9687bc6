"""Sinks of the `dlt` / `dp` API: `create_sink(name, format, options)` and `@foreach_batch_sink(name=...)`.
A sink is a destination outside the pipeline that append flows write to (`@dp.append_flow(target=sink)`);
what writing to one does is in `localdlt.sinks`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import localdlt.context as context
from localdlt.errors import DefinitionError
from localdlt.graph import Dataset, SinkSpec, check_identifier
from localdlt.sinks import DELTA, FOREACH_BATCH


def create_sink(name: str, format: str, options: Mapping[str, str] | None = None) -> None:  # noqa: A002
    """A sink that append flows can target: format "delta" with {"path": ...} or {"tableName": ...}."""
    check_identifier(name, "Sink")
    fmt = str(format).lower() if isinstance(format, str) else format
    if fmt == "kafka":
        raise DefinitionError(
            f"Sink '{name}' has format 'kafka', which is not supported locally (no Kafka broker here): "
            f"use format 'delta' or a @foreach_batch_sink."
        )
    if fmt != DELTA:
        raise DefinitionError(
            f"Sink '{name}' has format {format!r}, which is not supported: supported formats are delta "
            f"(locally; kafka is not supported locally)."
        )
    if options is not None and not isinstance(options, Mapping):
        raise DefinitionError(f"options of sink '{name}' must be a dict, got {type(options).__name__}.")
    opts = {str(k): str(v) for k, v in (options or {}).items()}
    if ("path" in opts) == ("tableName" in opts):
        raise DefinitionError(
            f"Delta sink '{name}' needs exactly one of the options 'path' or 'tableName', got "
            f"{sorted(opts) or 'none'}."
        )
    _add_sink(name, SinkSpec(format=DELTA, options=opts))


def foreach_batch_sink(function: Callable[[Any, int], Any] | None = None, *, name: str | None = None) -> Any:
    """A sink whose decorated function `f(df, batch_id)` is called with each micro-batch of the flows
    that target it."""

    def register(func: Callable[[Any, int], Any]) -> Callable[[Any, int], Any]:
        if not callable(func):
            raise DefinitionError(f"@foreach_batch_sink must decorate a function, got {func!r}.")
        sink_name = name or getattr(func, "__name__", None) or "<lambda>"
        check_identifier(sink_name, "Sink")
        _add_sink(sink_name, SinkSpec(format=FOREACH_BATCH, func=func))
        return func

    if function is not None:
        return register(function)
    return register


def _add_sink(name: str, spec: SinkSpec) -> None:
    context.current_graph().add_dataset(
        Dataset(name=name, kind="sink", source_file=context.current_file(), sink=spec)
    )
