"""The PostgreSQL source of the bronze layer, as the deployed pipelines read it.

* `schema`   the ten tables of `DE.tests`, declared once (columns, types, keys, PII, large text)
* `reads`    a table's snapshot (JDBC) or change stream (`pgcdc`), as a pipeline reads it
* `capture*` log-based change capture: the `pgcdc` data source, its slots, stream and decoding
* `retry`    source connections retried with exponential backoff

Errors derive from `errors.SourceError`. The local PostgreSQL that plays the source lives in
`inventory_devkit.postgres` (not deployed).
"""
