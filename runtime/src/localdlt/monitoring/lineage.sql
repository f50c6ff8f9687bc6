-- Databricks' lineage query, with get_json_object/from_json instead of the Databricks-only `details:path`
-- syntax, so it runs unchanged on Databricks and on open-source Spark. Needs the view latest_update.
SELECT
  get_json_object(details, '$.flow_definition.output_dataset') AS output_dataset,
  from_json(get_json_object(details, '$.flow_definition.input_datasets'), 'array<string>') AS input_dataset
FROM event_log_raw, latest_update
WHERE event_type = 'flow_definition' AND origin.update_id = latest_update.id
