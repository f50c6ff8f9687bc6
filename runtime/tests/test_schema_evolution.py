"""A table follows the schema its flow writes: which type changes Delta's type widening takes on its own,
and `evolve` on a real Delta table (added, widened incl. date -> timestamp_ntz, missing, refused)."""

from __future__ import annotations

import pytest
from pyspark.sql.types import StructType

from localdlt.errors import FlowError
from localdlt.schema_evolution import evolve, widens

_T = StructType.fromDDL


@pytest.mark.parametrize(
    ("old", "new", "wider"),
    [
        ("tinyint", "smallint", True),
        ("smallint", "int", True),
        ("int", "bigint", True),
        ("tinyint", "bigint", True),
        ("float", "double", True),
        ("decimal(5,2)", "decimal(9,2)", True),
        ("decimal(5,2)", "decimal(7,4)", True),  # two more digits each side of the point kept
        ("date", "timestamp_ntz", True),
        ("bigint", "int", False),
        ("decimal(9,2)", "decimal(5,2)", False),
        ("decimal(5,2)", "decimal(6,4)", False),  # the integer part would shrink
        ("decimal(5,2)", "decimal(9,1)", False),  # scale reduced
        ("int", "double", False),  # Delta takes these only when asked (ALTER), never by schema evolution
        ("int", "decimal(20,0)", False),
        ("int", "string", False),
        ("string", "int", False),
        ("date", "timestamp", False),
    ],
)
def test_widens_follows_deltas_automatic_type_widening(spark, old: str, new: str, wider: bool) -> None:
    assert widens(_T(f"c {old}")["c"].dataType, _T(f"c {new}")["c"].dataType) is wider


def test_evolve_adds_widens_keeps_and_refuses(spark, tmp_path) -> None:
    path = str(tmp_path / "t")
    spark.createDataFrame([], "id INT, d DATE, gone STRING").write.format("delta").save(path)
    change = evolve(spark, path, _T("id BIGINT, d TIMESTAMP_NTZ, extra STRING"), flow="f", dataset="t")
    assert (change.added, change.widened, change.missing_names) == (
        ["`extra` string"],
        ["`id` int -> bigint", "`d` date -> timestamp_ntz"],
        ["gone"],
    )
    schema = spark.read.format("delta").load(path).schema
    assert [(f.name, f.dataType.simpleString()) for f in schema.fields] == [
        ("id", "bigint"),
        ("d", "timestamp_ntz"),
        ("gone", "string"),
        ("extra", "string"),
    ]
    again = evolve(spark, path, _T("id BIGINT, d TIMESTAMP_NTZ, extra STRING"), flow="f", dataset="t")
    assert (again.added, again.widened) == ([], [])
    with pytest.raises(FlowError, match=r"Column 'extra' of 't' is string, but flow 'f' now writes int"):
        evolve(spark, path, _T("id BIGINT, extra INT"), flow="f", dataset="t")
