-- One row per update: start, end, final state and duration (Databricks' "monitor pipeline updates").
SELECT
  origin.update_id AS update_id,
  min(timestamp) AS started,
  max(timestamp) AS ended,
  max_by(get_json_object(details, '$.update_progress.state'), timestamp) AS state,
  unix_timestamp(max(timestamp)) - unix_timestamp(min(timestamp)) AS duration_seconds
FROM event_log_raw
WHERE event_type IN ('create_update', 'update_progress')
GROUP BY origin.update_id
ORDER BY started DESC
