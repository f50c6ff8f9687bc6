"""A pipeline shaped like Databricks' "baby names" tutorial, unchanged but for its input path: CSV files
read with Auto Loader into a streaming table, then a cleaned table and a top-names materialized view."""

from __future__ import annotations

from pathlib import Path

TUTORIAL = """
from pyspark.sql.functions import *

@dlt.table(
  comment="Popular baby first names in New York. This data was ingested from the New York State Department of Health."
)
def baby_names_raw():
  df = (spark.readStream.format("cloudFiles")
    .option("cloudFiles.format", "csv")
    .option("header", True)
    .option("inferSchema", True)
    .load(volume_path))
  df_renamed_column = df.withColumnRenamed("First Name", "First_Name")
  return df_renamed_column

@dlt.table(
  comment="New York popular baby first name data cleaned and prepared for analysis."
)
@dlt.expect("valid_first_name", "First_Name IS NOT NULL")
@dlt.expect_or_fail("valid_count", "Count > 0")
def baby_names_prepared():
  return (
    spark.read.table("LIVE.baby_names_raw")
      .withColumnRenamed("Year", "Year_Of_Birth")
      .select("Year_Of_Birth", "First_Name", "Count")
  )

@dlt.table(
  comment="A table summarizing counts of the top baby names for New York for 2021."
)
def top_baby_names_2021():
  return (
    spark.read.table("LIVE.baby_names_prepared")
      .filter(expr("Year_Of_Birth == 2021"))
      .groupBy("First_Name")
      .agg(sum("Count").alias("Total_Count"))
      .sort(desc("Total_Count"))
      .limit(10)
  )
"""

FIRST = """Year,First Name,County,Sex,Count
2021,OLIVIA,KINGS,F,40
2021,LIAM,KINGS,M,52
2021,OLIVIA,QUEENS,F,25
2020,EMMA,BRONX,F,30
"""

SECOND = """Year,First Name,County,Sex,Count
2021,LIAM,BRONX,M,10
2021,NOAH,ERIE,M,70
2022,OLIVIA,KINGS,F,41
"""


def test_baby_names_tutorial_runs_end_to_end(pipeline):
    volume = pipeline.root / "volume" / "baby_names"
    volume.mkdir(parents=True)
    (volume / "rows-2021.csv").write_text(FIRST)
    pipeline.write("baby_names.py", f'volume_path = "{volume}"\n' + TUTORIAL)
    first = pipeline.run()
    assert first.ok, first.error
    assert pipeline.rows("top_baby_names_2021") == [("LIAM", 52), ("OLIVIA", 65)]
    types = {f.name: f.dataType.simpleString() for f in pipeline.table("baby_names_raw").schema.fields}
    assert types == {
        "Year": "int",
        "First_Name": "string",
        "County": "string",
        "Sex": "string",
        "Count": "int",
        "_rescued_data": "string",
    }

    Path(volume / "rows-2022.csv").write_text(SECOND)
    second = pipeline.run()
    assert second.ok, second.error
    assert second.flows["baby_names_raw"].metrics.num_output_rows == 3  # the new file only
    assert len(pipeline.rows("baby_names_raw")) == 7
    assert pipeline.rows("top_baby_names_2021") == [("LIAM", 62), ("NOAH", 70), ("OLIVIA", 65)]
    assert pipeline.rows("baby_names_prepared", "Year_Of_Birth", "First_Name", "Count")[-1] == (
        2022,
        "OLIVIA",
        41,
    )
