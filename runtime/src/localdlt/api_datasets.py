"""The `dlt` API's tables, views, flows, reads and expectations (`@dlt.table`, `dlt.read`, `@dlt.expect`,
...): each call adds a dataset or flow to the graph of the pipeline being loaded (`localdlt.graph`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import localdlt.context as context
from localdlt.errors import DefinitionError, UnsupportedParameterError
from localdlt.graph import Dataset, Expectation, Flow, check_identifier

# Table properties the runtime understands under the `pipelines.` prefix. `delta.*` properties are
# checked by Delta Lake itself when the table is set up; any other key is a plain user property.
KNOWN_PIPELINE_PROPERTIES = frozenset(
    {
        "pipelines.reset.allowed",
        "pipelines.autoOptimize.managed",
        "pipelines.autoOptimize.zOrderCols",
        "pipelines.trigger.interval",
        "pipelines.cdc.tombstoneGCThresholdInSeconds",
        "pipelines.cdc.tombstoneGCFrequencyInSeconds",
    }
)

_EXPECTATIONS_ATTR = "_dlt_expectations"
_DATASET_ATTR = "_dlt_dataset"


# --------------------------------------------------------------------------------------------- checks
def _str_dict(value: Mapping[str, Any] | None, what: str, owner: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DefinitionError(f"{what} of '{owner}' must be a dict of strings, got {type(value).__name__}.")
    return {str(k): str(v) for k, v in value.items()}


def _str_list(value: Any, what: str, owner: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise DefinitionError(f"{what} of '{owner}' must be a list of column names, got {value!r}.")
    return list(value)


def _check_properties(props: dict[str, str], owner: str) -> dict[str, str]:
    for key in props:
        if key.startswith("pipelines.") and key not in KNOWN_PIPELINE_PROPERTIES:
            known = ", ".join(sorted(KNOWN_PIPELINE_PROPERTIES))
            raise UnsupportedParameterError(
                f"Unknown table property '{key}' on dataset '{owner}'. Known pipelines.* properties: {known}."
            )
    return props


def _refuse(value: Any, parameter: str, owner: str, why: str) -> None:
    if value is not None:
        raise UnsupportedParameterError(
            f"Parameter '{parameter}' of dataset '{owner}' is not supported: {why}"
        )


def _function_name(func: Callable[..., Any]) -> str:
    return getattr(func, "__name__", None) or "<lambda>"


def _take_expectations(func: Callable[..., Any]) -> list[Expectation]:
    return list(getattr(func, _EXPECTATIONS_ATTR, []))


# ------------------------------------------------------------------------------------------- datasets
def _dataset_decorator(kind: str, query_function: Callable[..., Any] | None, **params: Any) -> Any:
    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(func):
            raise DefinitionError(f"@dlt.{kind} must decorate a function, got {func!r}.")
        graph = context.current_graph()
        source_file = context.current_file()
        name = params.get("name") or _function_name(func)
        check_identifier(name, "Dataset")
        _refuse(params.get("row_filter"), "row_filter", name, "row filters need Unity Catalog.")
        is_view = kind in ("view", "temporary_view")
        ds = Dataset(
            name=name,
            kind="view" if is_view else "table",
            source_file=source_file,
            comment=params.get("comment"),
            spark_conf=_str_dict(params.get("spark_conf"), "spark_conf", name),
            table_properties=_check_properties(
                _str_dict(params.get("table_properties"), "table_properties", name), name
            ),
            partition_cols=_str_list(params.get("partition_cols"), "partition_cols", name),
            cluster_by=_str_list(params.get("cluster_by"), "cluster_by", name),
            schema=params.get("schema"),
            temporary=bool(params.get("temporary") or params.get("private")),
            path=params.get("path"),
            expectations=_take_expectations(func),
            func=func if is_view else None,
            materialized_only=kind == "materialized_view",
        )
        if ds.partition_cols and ds.cluster_by:
            raise DefinitionError(
                f"Dataset '{name}' sets both partition_cols and cluster_by; Delta allows one or the other."
            )
        graph.add_dataset(ds)
        if not is_view:
            graph.add_flow(
                Flow(
                    name=name,
                    target=name,
                    func=func,
                    source_file=source_file,
                    comment=ds.comment,
                    spark_conf=ds.spark_conf,
                )
            )
        setattr(func, _DATASET_ATTR, ds)
        return func

    if query_function is not None:
        return register(query_function)
    return register


def _table_like(kind: str) -> Any:
    def decorator(
        query_function: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        comment: str | None = None,
        spark_conf: Mapping[str, str] | None = None,
        table_properties: Mapping[str, str] | None = None,
        partition_cols: list[str] | None = None,
        path: str | None = None,
        schema: Any = None,
        temporary: bool = False,
        private: bool = False,
        cluster_by: list[str] | None = None,
        cluster_by_auto: bool = False,
        row_filter: str | None = None,
    ) -> Any:
        return _dataset_decorator(
            kind,
            query_function,
            name=name,
            comment=comment,
            spark_conf=spark_conf,
            table_properties=table_properties,
            partition_cols=partition_cols,
            path=path,
            schema=schema,
            temporary=temporary,
            private=private,
            cluster_by=cluster_by,
            cluster_by_auto=cluster_by_auto,
            row_filter=row_filter,
        )

    return decorator


table = _table_like("table")
table.__name__ = table.__qualname__ = "table"
table.__doc__ = """A table: a streaming table when the query is a stream, otherwise a materialized view.
`private=True` (or the older `temporary=True`): materialised and readable in the pipeline, not published."""
materialized_view = _table_like("materialized_view")
materialized_view.__name__ = materialized_view.__qualname__ = "materialized_view"
materialized_view.__doc__ = "A materialized view, always: a streaming query is a DefinitionError."
# `cluster_by_auto` (Databricks picks clustering keys by itself) is accepted and has no local effect.


def view(
    query_function: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    comment: str | None = None,
    spark_conf: Mapping[str, str] | None = None,
) -> Any:
    """A view: not persisted, recomputed wherever it is read."""
    return _dataset_decorator("view", query_function, name=name, comment=comment, spark_conf=spark_conf)


temporary_view = view


def create_streaming_table(
    name: str,
    comment: str | None = None,
    spark_conf: Mapping[str, str] | None = None,
    table_properties: Mapping[str, str] | None = None,
    partition_cols: list[str] | None = None,
    path: str | None = None,
    schema: Any = None,
    expect_all: Mapping[str, Any] | None = None,
    expect_all_or_drop: Mapping[str, Any] | None = None,
    expect_all_or_fail: Mapping[str, Any] | None = None,
    cluster_by: list[str] | None = None,
    row_filter: str | None = None,
    private: bool = False,
) -> None:
    """A streaming table written by flows (`append_flow`, `apply_changes`, ...)."""
    graph = context.current_graph()
    check_identifier(name, "Dataset")
    _refuse(row_filter, "row_filter", name, "row filters need Unity Catalog.")
    expectations = (
        _expectations(expect_all, "warn", "expect_all")
        + _expectations(expect_all_or_drop, "drop", "expect_all_or_drop")
        + _expectations(expect_all_or_fail, "fail", "expect_all_or_fail")
    )
    ds = Dataset(
        name=name,
        kind="streaming_table",
        source_file=context.current_file(),
        comment=comment,
        spark_conf=_str_dict(spark_conf, "spark_conf", name),
        table_properties=_check_properties(_str_dict(table_properties, "table_properties", name), name),
        partition_cols=_str_list(partition_cols, "partition_cols", name),
        cluster_by=_str_list(cluster_by, "cluster_by", name),
        schema=schema,
        temporary=bool(private),
        path=path,
        expectations=expectations,
        explicit_target=True,
    )
    if ds.partition_cols and ds.cluster_by:
        raise DefinitionError(
            f"Dataset '{name}' sets both partition_cols and cluster_by; Delta allows one or the other."
        )
    graph.add_dataset(ds)


def create_target_table(*args: Any, **kwargs: Any) -> None:
    """Deprecated Databricks name of `create_streaming_table`."""
    create_streaming_table(*args, **kwargs)


def append_flow(
    target: str,
    name: str | None = None,
    comment: str | None = None,
    spark_conf: Mapping[str, str] | None = None,
    once: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Append a query's rows to a streaming table; several flows may feed one target."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        flow_name = name or _function_name(func)
        if getattr(func, _EXPECTATIONS_ATTR, None):
            target_ds = context.current_graph().datasets.get(target)
            if target_ds is not None and target_ds.is_sink:
                raise DefinitionError(
                    f"Flow '{flow_name}' has expectation decorators but writes to sink '{target}': "
                    f"expectations are not allowed on sinks."
                )
            raise DefinitionError(
                f"Flow '{flow_name}' has expectation decorators; expectations belong to the target "
                f"table: pass expect_all* to dlt.create_streaming_table('{target}')."
            )
        context.current_graph().add_flow(
            Flow(
                name=flow_name,
                target=target,
                func=func,
                source_file=context.current_file(),
                comment=comment,
                spark_conf=_str_dict(spark_conf, "spark_conf", flow_name),
                once=bool(once),
            )
        )
        return func

    return register


# ----------------------------------------------------------------------------------------------- reads
def read(name: str) -> Any:
    """Batch read of another dataset of this pipeline."""
    return context.current_reader().read(strip_live(name))


def read_stream(name: str) -> Any:
    """Incremental (streaming) read of another dataset of this pipeline."""
    return context.current_reader().read_stream(strip_live(name))


def strip_live(name: str) -> str:
    """A dataset's name as pipeline code may write it (`LIVE.orders`, as older pipelines do) -> `orders`."""
    if not isinstance(name, str):
        raise DefinitionError(f"dlt.read takes a dataset name, got {name!r}.")
    return name[5:] if name.lower().startswith("live.") else name


# ------------------------------------------------------------------------------------------ expectations
def _expectations(mapping: Mapping[str, Any] | None, action: str, decorator: str) -> list[Expectation]:
    if mapping is None:
        return []
    if not isinstance(mapping, Mapping):
        raise DefinitionError(
            f"{decorator} takes a dict of {{name: constraint}}, got {type(mapping).__name__}."
        )
    return [_expectation(name, constraint, action, decorator) for name, constraint in mapping.items()]


def _expectation(name: Any, constraint: Any, action: str, decorator: str) -> Expectation:
    if not isinstance(name, str) or not name:
        raise DefinitionError(f"{decorator}: an expectation needs a non-empty name, got {name!r}.")
    if isinstance(constraint, str):
        if not constraint.strip():
            raise DefinitionError(f"{decorator}: expectation '{name}' has an empty constraint.")
    elif type(constraint).__name__ != "Column":
        raise DefinitionError(
            f"{decorator}: the constraint of expectation '{name}' must be a SQL string or a Column, "
            f"got {type(constraint).__name__}."
        )
    return Expectation(name=name, constraint=constraint, action=action)  # type: ignore[arg-type]


def _expect_decorator(expectations: list[Expectation]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def attach(func: Callable[..., Any]) -> Callable[..., Any]:
        ds = getattr(func, _DATASET_ATTR, None)
        if ds is not None:  # decorator written above @dlt.table
            ds.expectations.extend(expectations)
        else:
            setattr(func, _EXPECTATIONS_ATTR, [*expectations, *getattr(func, _EXPECTATIONS_ATTR, [])])
        return func

    return attach


def expect(name: str, constraint: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return _expect_decorator([_expectation(name, constraint, "warn", "expect")])


def expect_or_drop(name: str, constraint: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return _expect_decorator([_expectation(name, constraint, "drop", "expect_or_drop")])


def expect_or_fail(name: str, constraint: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return _expect_decorator([_expectation(name, constraint, "fail", "expect_or_fail")])


def expect_all(expectations: Mapping[str, Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return _expect_decorator(_expectations(expectations, "warn", "expect_all"))


def expect_all_or_drop(expectations: Mapping[str, Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return _expect_decorator(_expectations(expectations, "drop", "expect_all_or_drop"))


def expect_all_or_fail(expectations: Mapping[str, Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return _expect_decorator(_expectations(expectations, "fail", "expect_all_or_fail"))
