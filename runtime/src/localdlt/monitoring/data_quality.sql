-- Databricks' data quality query: passing and failing records per dataset and expectation in the latest
-- update. Needs the view latest_update.
SELECT
  row_expectations.dataset AS dataset,
  row_expectations.name AS expectation,
  SUM(row_expectations.passed_records) AS passing_records,
  SUM(row_expectations.failed_records) AS failing_records
FROM (
  SELECT explode(
    from_json(
      get_json_object(details, '$.flow_progress.data_quality.expectations'),
      'array<struct<name: string, dataset: string, passed_records: bigint, failed_records: bigint>>'
    )
  ) AS row_expectations
  FROM event_log_raw, latest_update
  WHERE event_type = 'flow_progress' AND origin.update_id = latest_update.id
)
GROUP BY row_expectations.dataset, row_expectations.name
