-- Every row of BigQuery's ingestion log (include/taxi/bigquery/ingestion_log.py,
-- BigQueryLog.records): one small row per attempt, reduced to the latest attempt and latest
-- load per table-month in Python rather than with window functions the emulator may not share
-- with BigQuery. {contract_fingerprint}, {warnings} and {error} are the column, or a typed
-- NULL when an older log has none.
SELECT service, month, status, rows_in_target, run_id, finished_at, source_uri, source_sha256,
       {contract_fingerprint}, {warnings}, {error}
FROM {log};
