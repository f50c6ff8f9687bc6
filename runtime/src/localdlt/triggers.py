"""`pipelines.trigger.interval`: how often a flow of a continuous update starts a micro-batch.

Set per flow or dataset (`@dlt.table(spark_conf={"pipelines.trigger.interval": "30 seconds"})`, or the
table property of that name) or for the whole pipeline (its configuration); the nearest wins. Values as
Databricks writes them: "<number> <unit>", unit millisecond(s), second(s), minute(s) or hour(s).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from localdlt.errors import DefinitionError
from localdlt.graph import Dataset, Flow

SETTING = "pipelines.trigger.interval"
_UNITS = {"millisecond": 0.001, "ms": 0.001, "second": 1.0, "s": 1.0, "minute": 60.0, "hour": 3600.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$", re.IGNORECASE)


def parse_interval(text: str, owner: str) -> float:
    """Seconds of an interval like '10 seconds'; a DefinitionError naming `owner` otherwise."""
    match = _PATTERN.match(text)
    word = match.group(2).lower() if match else ""
    unit = _UNITS.get(word, _UNITS.get(word.removesuffix("s")))
    if match is None or unit is None or float(match.group(1)) <= 0:
        raise DefinitionError(
            f"{SETTING} of {owner} must be a positive interval like '10 seconds' or '1 minute', not {text!r}."
        )
    return float(match.group(1)) * unit


def flow_interval(flow: Flow, ds: Dataset, conf: Mapping[str, str], default: float) -> float:
    """The flow's trigger interval in seconds: the flow's, its dataset's, the pipeline's or `default`."""
    for owner, source in (
        (f"flow '{flow.name}'", flow.spark_conf),
        (f"dataset '{ds.name}'", ds.spark_conf),
        (f"dataset '{ds.name}' (table property)", ds.table_properties),
        ("the pipeline's configuration", conf),
    ):
        value = source.get(SETTING)
        if value is not None:
            return parse_interval(str(value), owner)
    return default
