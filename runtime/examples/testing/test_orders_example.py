"""The orders pipeline run by localdlt's pytest plugin: rows given for `raw_orders`, then its tables, its
expectation counts and its event log checked. The `dlt_pipeline` fixture comes with `pip install localdlt`."""

from pathlib import Path

PIPELINE = Path(__file__).parent / "pipelines"
RAW_ORDERS = "order_id INT, customer STRING, amount DOUBLE"


def test_orders_are_cleaned_checked_and_summed(dlt_pipeline):
    result = dlt_pipeline.run(
        PIPELINE,
        inputs={"raw_orders": [(1, "ann", 10.0), (2, None, 5.0), (3, "bob", -2.5), (4, "ann", 2.499)]},
        schemas={"raw_orders": RAW_ORDERS},
    )
    assert result.ok, result.error
    assert result.rows("orders") == [(1, "ann", 10.0), (3, "bob", -2.5), (4, "ann", 2.5)]
    assert result.rows("revenue_by_customer") == [("ann", 12.5, 2), ("bob", -2.5, 1)]
    # (passed, failed) per dataset and expectation, from the event log's flow_progress events
    assert result.expectations == {
        "cleaned_orders": {"has_customer": (3, 1)},
        "orders": {"positive_amount": (2, 1)},
    }
    assert result.dropped_records == {"orders": 1}


def test_a_second_update_reads_only_the_new_orders(dlt_pipeline):
    first = dlt_pipeline.run(
        PIPELINE, inputs={"raw_orders": [(1, "ann", 10.0)]}, schemas={"raw_orders": RAW_ORDERS}
    )
    assert first.ok, first.error
    second = dlt_pipeline.run(PIPELINE, inputs={"raw_orders": [(2, "ann", 4.0), (3, "cy", 1.0)]})
    assert second.ok, second.error
    assert second.expectations["orders"]["positive_amount"] == (2, 0)  # the new orders only
    assert second.rows("revenue_by_customer") == [("ann", 14.0, 2), ("cy", 1.0, 1)]
    flows = {
        e["flow_name"]: e["metrics"]["num_output_rows"]
        for e in second.events("flow_progress")
        if "metrics" in e
    }
    assert flows["orders"] == 2


def test_only_the_orders_table(dlt_pipeline):
    result = dlt_pipeline.run(
        PIPELINE,
        inputs={"raw_orders": [(1, "ann", 10.0)]},
        schemas={"raw_orders": RAW_ORDERS},
        datasets=["cleaned_orders", "orders"],  # the materialized view does not run
    )
    assert result.ok, result.error
    assert result.rows("orders", "order_id") == [(1,)]
    assert set(result.update.flows) == {"raw_orders", "orders"}
