"""An embedded PostgreSQL 16 that plays the source `DE.tests` on one machine (never deployed).

* `server`, `server_access`  start/stop/status of the local server, `ServerInfo`, the local secrets file
* `ddl`        the tables of inventory_bronze.source.schema created in PostgreSQL; `check_database`
* `generator`  deterministic, vectorised generation of the tables (numpy + pyarrow); `dirty` its rules;
               `vocab` the words it draws from
* `load`       `seed_database`: binary COPY (`pgbinary`) of the generated tables, with timings
* `workload`   `run_changes`: the change workload (business transactions, optional DDL)
"""
