-- Databricks' "latest update" query over the event log (view event_log_raw).
SELECT origin.update_id AS id
FROM event_log_raw
WHERE event_type = 'create_update'
ORDER BY timestamp DESC
LIMIT 1
