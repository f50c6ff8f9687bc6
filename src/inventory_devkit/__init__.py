"""Local development tools of the inventory bronze layer, not deployed (not in the bundle's wheel).

* `project`   where the checkout's files are (conf/tables.yml, var/, the bundle)
* `bundle`    databricks.yml and resources/*.yml as typed data, for local runs and checks
* `local_run` the bundle's pipelines run through the local runtime `localdlt` (`run`, `demo`)
* `postgres`  an embedded PostgreSQL 16 playing the source: server, generated data, change workload
"""
