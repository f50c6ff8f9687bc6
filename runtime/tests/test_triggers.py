"""`pipelines.trigger.interval`: parsed as Databricks writes it, the nearest setting wins, bad values named."""

from __future__ import annotations

import pytest

from localdlt.errors import DefinitionError
from localdlt.graph import Dataset, Flow
from localdlt.triggers import SETTING, flow_interval, parse_interval


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10 seconds", 10.0),
        ("1 second", 1.0),
        ("1 minute", 60.0),
        ("500 milliseconds", 0.5),
        ("2 hours", 7200.0),
    ],
)
def test_intervals_as_databricks_writes_them(text: str, seconds: float) -> None:
    assert parse_interval(text, "x") == seconds


@pytest.mark.parametrize("text", ["ten seconds", "5 parsecs", "0 seconds", "-1 second", ""])
def test_a_bad_interval_names_its_owner(text: str) -> None:
    with pytest.raises(DefinitionError, match=r"pipelines.trigger.interval of flow 'f' must be .*10 seconds"):
        parse_interval(text, "flow 'f'")


def test_the_nearest_setting_wins() -> None:
    ds = Dataset(name="t", kind="streaming_table")
    flow = Flow(name="t", target="t", kind="query")
    assert flow_interval(flow, ds, {}, 1.0) == 1.0
    assert flow_interval(flow, ds, {SETTING: "5 seconds"}, 1.0) == 5.0
    ds.table_properties[SETTING] = "20 seconds"
    assert flow_interval(flow, ds, {SETTING: "5 seconds"}, 1.0) == 20.0
    ds.spark_conf[SETTING] = "30 seconds"
    assert flow_interval(flow, ds, {SETTING: "5 seconds"}, 1.0) == 30.0
    flow.spark_conf[SETTING] = "1 minute"
    assert flow_interval(flow, ds, {SETTING: "5 seconds"}, 1.0) == 60.0
