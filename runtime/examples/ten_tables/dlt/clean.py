"""Validated streams: expectations drop what downstream must not see, and count the rest."""

import dlt


@dlt.table(comment="Orders with a customer and a known status.")
@dlt.expect_or_drop("has_customer", "customer_id IS NOT NULL")
@dlt.expect("known_status", "status IN ('new', 'paid', 'shipped', 'cancelled')")
def orders():
    return dlt.read_stream("orders_raw")


@dlt.table(comment="Order lines with a positive quantity and price.")
@dlt.expect_all_or_drop({"positive_quantity": "quantity > 0", "positive_price": "unit_price > 0"})
def order_lines():
    return dlt.read_stream("order_lines_raw")


@dlt.table(comment="Lines worth more than 1 000.")
def large_lines():
    return dlt.read_stream("order_lines").where("quantity * unit_price > 1000")
