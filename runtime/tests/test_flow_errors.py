"""A flow's error says what went wrong in the user's code, even when Spark wraps it: the Python error of
a streaming data source (its class and its whole message, several lines) reaches the update's result and
the event log, not only Spark's first line ('... perform latestOffset: Traceback')."""

from __future__ import annotations


def test_a_streaming_data_source_error_reaches_the_flow_error_whole(pipeline):
    pipeline.write(
        "broken_source.py",
        """
        from pyspark.sql.datasource import DataSource, DataSourceStreamReader


        class SlotGone(Exception):
            pass


        class Reader(DataSourceStreamReader):
            def initialOffset(self):
                return {"n": 0}

            def latestOffset(self):
                raise SlotGone("replication slot 'bz_x' does not exist\\nrecover with: capture setup --table t.x")

            def partitions(self, start, end):
                return []

            def read(self, partition):
                return iter([])


        class Broken(DataSource):
            @classmethod
            def name(cls):
                return "broken_for_test"

            def schema(self):
                return "id INT"

            def streamReader(self, schema):
                return Reader()


        spark.dataSource.register(Broken)


        @dlt.table
        def fed():
            return spark.readStream.format("broken_for_test").load()
        """,
    )
    result = pipeline.run(conf={"pipelines.maxFlowRetryAttempts": "0"})
    assert not result.ok
    flow_error = str(result.flows["fed"].error)
    for text in (flow_error, str(result.error)):
        assert "SlotGone" in text and "replication slot 'bz_x' does not exist" in text, text
        assert "capture setup --table t.x" in text, text
    logged = pipeline.events().where("level = 'ERROR' AND origin.flow_name = 'fed'").first()
    assert "capture setup --table t.x" in logged.message
