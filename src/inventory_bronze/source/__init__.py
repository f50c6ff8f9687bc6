"""The PostgreSQL source of the bronze layer.

* `server`    the local PostgreSQL 16 server (start/stop/status, `ServerInfo`, the local secrets file)
* `schema`    the ten tables of `DE.tests`, declared once; DDL, `check_database`, `describe`
* `generator` deterministic, vectorised generation of the tables (numpy + pyarrow); `dirty` its rules
* `load`      `seed_database`: binary COPY (`pgbinary`) of the generated tables, with timings
* `workload`  `run_changes`: the change workload (business transactions, optional DDL)
* `snapshot`  `read_table`: consistent snapshot reads through Spark JDBC

Errors derive from `errors.SourceError`. (`capture*` and `secrets*` modules: log-based change capture.)
"""
