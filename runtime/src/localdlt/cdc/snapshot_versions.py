"""Versions of the snapshots an AUTO CDC FROM SNAPSHOT flow applies: an int, a date, a timestamp, a float or a
string, as the source function returns them (a dataset source's version is the time it was read). Kept as
JSON in the flow's snapshot.json (`encode`, `decode`) and written as a SQL literal into __START_AT/__END_AT
of an SCD type 2 target (`version_lit`)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pyspark.sql import functions as F


def encode(version: Any) -> str:
    if isinstance(version, bool):
        raise TypeError("a bool is not a snapshot version")
    if isinstance(version, int):
        return json.dumps({"t": "int", "v": version})
    if isinstance(version, dt.datetime):
        return json.dumps({"t": "datetime", "v": version.isoformat()})
    if isinstance(version, dt.date):
        return json.dumps({"t": "date", "v": version.isoformat()})
    if isinstance(version, float):
        return json.dumps({"t": "float", "v": version})
    if isinstance(version, str):
        return json.dumps({"t": "str", "v": version})
    raise TypeError(f"unsupported snapshot version type {type(version).__name__}")


def decode(text: str | None) -> Any:
    if text is None:
        return None
    d = json.loads(text)
    t, v = d["t"], d["v"]
    if t == "datetime":
        return dt.datetime.fromisoformat(v)
    if t == "date":
        return dt.date.fromisoformat(v)
    return v


def version_lit(version: Any) -> Any:
    if isinstance(version, int) and not isinstance(version, bool):
        return F.lit(version).cast("long")
    if isinstance(version, dt.datetime):
        return F.lit(version).cast("timestamp")
    return F.lit(version)
