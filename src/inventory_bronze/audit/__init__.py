"""The audit trail of the bronze pipelines, derived from their event logs (`derive`, pure DataFrame
functions that run unchanged on Databricks and locally), stored incrementally (`store`), and shown as a
terminal list (`status`) and a static HTML page (`report`)."""
