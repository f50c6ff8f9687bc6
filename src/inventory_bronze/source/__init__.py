"""The PostgreSQL source of the bronze layer: a local server (`server`), the declared schema of `DE.tests`
(`schema`), a deterministic data generator (`generator`), a change workload (`workload`) and snapshot reads
through Spark JDBC (`snapshot`). Errors derive from `errors.SourceError`."""
