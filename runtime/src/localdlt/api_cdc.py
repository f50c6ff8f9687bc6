"""The `dlt` API's AUTO CDC flows: `create_auto_cdc_flow` (`apply_changes`) applies a change feed to a
streaming table, `create_auto_cdc_from_snapshot_flow` (`apply_changes_from_snapshot`) successive full
snapshots, as SCD type 1 or 2. They are checked and added to the graph here; `localdlt.cdc` runs them."""

from __future__ import annotations

from typing import Any

import localdlt.context as context
from localdlt.api_datasets import strip_live
from localdlt.errors import DefinitionError
from localdlt.graph import CdcSpec, Flow, SnapshotCdcSpec


def _scd_type(value: Any, flow: str) -> int:
    try:
        scd = int(str(value))
    except ValueError:
        scd = 0
    if scd not in (1, 2):
        raise DefinitionError(f"stored_as_scd_type of flow '{flow}' must be 1 or 2, got {value!r}.")
    return scd


def _column_names(value: Any, what: str, flow: str) -> list[str] | None:
    """Column lists of AUTO CDC flows: names, or plain `col("name")` Columns as Databricks allows."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise DefinitionError(f"{what} of flow '{flow}' must be a list of column names, got {value!r}.")
    names = []
    for item in items:
        if not isinstance(item, str):
            import re

            m = re.fullmatch(r"Column<'`?([A-Za-z_][A-Za-z0-9_]*)`?'>", str(item))
            if m is None:
                raise DefinitionError(
                    f"{what} of flow '{flow}' must name columns (strings or col('name')), got {item!r}."
                )
            item = m.group(1)
        names.append(item)
    return names


def _one_of(a: Any, b: Any, names: str, flow: str) -> None:
    if a is not None and b is not None:
        raise DefinitionError(f"Flow '{flow}' sets both {names}; set at most one of them.")


def create_auto_cdc_flow(
    target: str,
    source: str,
    keys: list[str],
    sequence_by: Any,
    where: Any = None,
    ignore_null_updates: bool = False,
    apply_as_deletes: Any = None,
    apply_as_truncates: Any = None,
    column_list: list[str] | None = None,
    except_column_list: list[str] | None = None,
    stored_as_scd_type: int | str = 1,
    track_history_column_list: list[str] | None = None,
    track_history_except_column_list: list[str] | None = None,
    name: str | None = None,
    once: bool = False,
    ignore_null_updates_column_list: list[str] | None = None,
    ignore_null_updates_except_column_list: list[str] | None = None,
) -> None:
    """Apply a change feed to a streaming table as SCD type 1 or 2 (AUTO CDC)."""
    flow_name = name or target
    if not isinstance(source, str):
        raise DefinitionError(f"AUTO CDC flow '{flow_name}': source must be a dataset name, got {source!r}.")
    keys = _column_names(keys, "keys", flow_name) or []
    if not keys:
        raise DefinitionError(f"AUTO CDC flow '{flow_name}' needs at least one key column.")
    column_list = _column_names(column_list, "column_list", flow_name)
    except_column_list = _column_names(except_column_list, "except_column_list", flow_name)
    track_history_column_list = _column_names(
        track_history_column_list, "track_history_column_list", flow_name
    )
    track_history_except_column_list = _column_names(
        track_history_except_column_list, "track_history_except_column_list", flow_name
    )
    if sequence_by is None:
        raise DefinitionError(f"AUTO CDC flow '{flow_name}' needs sequence_by.")
    _one_of(column_list, except_column_list, "column_list and except_column_list", flow_name)
    _one_of(
        track_history_column_list,
        track_history_except_column_list,
        "track_history_column_list and track_history_except_column_list",
        flow_name,
    )
    _one_of(
        ignore_null_updates_column_list,
        ignore_null_updates_except_column_list,
        "ignore_null_updates_column_list and ignore_null_updates_except_column_list",
        flow_name,
    )
    scd = _scd_type(stored_as_scd_type, flow_name)
    if scd == 2 and apply_as_truncates is not None:
        raise DefinitionError(
            f"AUTO CDC flow '{flow_name}': apply_as_truncates is only allowed with SCD type 1."
        )
    if scd == 1 and (track_history_column_list or track_history_except_column_list):
        raise DefinitionError(
            f"AUTO CDC flow '{flow_name}': track_history_* lists need stored_as_scd_type=2."
        )
    spec = CdcSpec(
        source=strip_live(source),
        keys=keys,
        sequence_by=sequence_by,
        where=where,
        ignore_null_updates=bool(ignore_null_updates),
        ignore_null_updates_column_list=ignore_null_updates_column_list,
        ignore_null_updates_except_column_list=ignore_null_updates_except_column_list,
        apply_as_deletes=apply_as_deletes,
        apply_as_truncates=apply_as_truncates,
        column_list=column_list,
        except_column_list=except_column_list,
        stored_as_scd_type=scd,
        track_history_column_list=track_history_column_list,
        track_history_except_column_list=track_history_except_column_list,
    )
    context.current_graph().add_flow(
        Flow(
            name=flow_name,
            target=target,
            kind="cdc",
            source_file=context.current_file(),
            once=bool(once),
            cdc=spec,
        )
    )


def apply_changes(
    target: str,
    source: str,
    keys: list[str],
    sequence_by: Any,
    where: Any = None,
    ignore_null_updates: bool = False,
    apply_as_deletes: Any = None,
    apply_as_truncates: Any = None,
    column_list: list[str] | None = None,
    except_column_list: list[str] | None = None,
    stored_as_scd_type: int | str = 1,
    track_history_column_list: list[str] | None = None,
    track_history_except_column_list: list[str] | None = None,
    flow_name: str | None = None,
    once: bool = False,
    ignore_null_updates_column_list: list[str] | None = None,
    ignore_null_updates_except_column_list: list[str] | None = None,
) -> None:
    """Databricks' original name of `create_auto_cdc_flow` (`flow_name` instead of `name`)."""
    create_auto_cdc_flow(
        target=target,
        source=source,
        keys=keys,
        sequence_by=sequence_by,
        where=where,
        ignore_null_updates=ignore_null_updates,
        apply_as_deletes=apply_as_deletes,
        apply_as_truncates=apply_as_truncates,
        column_list=column_list,
        except_column_list=except_column_list,
        stored_as_scd_type=stored_as_scd_type,
        track_history_column_list=track_history_column_list,
        track_history_except_column_list=track_history_except_column_list,
        name=flow_name,
        once=once,
        ignore_null_updates_column_list=ignore_null_updates_column_list,
        ignore_null_updates_except_column_list=ignore_null_updates_except_column_list,
    )


def create_auto_cdc_from_snapshot_flow(
    target: str,
    source: Any,
    keys: list[str],
    stored_as_scd_type: int | str = 1,
    track_history_column_list: list[str] | None = None,
    track_history_except_column_list: list[str] | None = None,
    name: str | None = None,
) -> None:
    """Apply successive full snapshots to a streaming table as SCD type 1 or 2."""
    flow_name = name or target
    if not (isinstance(source, str) or callable(source)):
        raise DefinitionError(
            f"AUTO CDC FROM SNAPSHOT flow '{flow_name}': source must be a dataset name or a function "
            f"f(latest_version) -> (DataFrame, version) | None, got {source!r}."
        )
    keys = _column_names(keys, "keys", flow_name) or []
    if not keys:
        raise DefinitionError(f"AUTO CDC FROM SNAPSHOT flow '{flow_name}' needs at least one key column.")
    _one_of(
        track_history_column_list,
        track_history_except_column_list,
        "track_history_column_list and track_history_except_column_list",
        flow_name,
    )
    spec = SnapshotCdcSpec(
        source=strip_live(source) if isinstance(source, str) else source,
        keys=keys,
        stored_as_scd_type=_scd_type(stored_as_scd_type, flow_name),
        track_history_column_list=track_history_column_list,
        track_history_except_column_list=track_history_except_column_list,
    )
    context.current_graph().add_flow(
        Flow(
            name=flow_name,
            target=target,
            kind="snapshot_cdc",
            source_file=context.current_file(),
            snapshot=spec,
        )
    )


def apply_changes_from_snapshot(
    target: str,
    source: Any,
    keys: list[str],
    stored_as_scd_type: int | str = 1,
    track_history_column_list: list[str] | None = None,
    track_history_except_column_list: list[str] | None = None,
) -> None:
    """Databricks' original name of `create_auto_cdc_from_snapshot_flow`."""
    create_auto_cdc_from_snapshot_flow(
        target=target,
        source=source,
        keys=keys,
        stored_as_scd_type=stored_as_scd_type,
        track_history_column_list=track_history_column_list,
        track_history_except_column_list=track_history_except_column_list,
    )
