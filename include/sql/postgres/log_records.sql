-- What the log says (include/taxi/postgres/ingestion_log.py, PostgresLog.records): per trip
-- table and source month, the latest attempt of any status and the latest load, read from the
-- log alone (never from the trip tables, so it stays fast on billions of rows). {warnings},
-- {source_url} and {contract_fingerprint} are the column, or NULL when an older log has none.
(SELECT DISTINCT ON (table_name, source_month)
        'latest' AS kind, service, source_month, status, rows_in_target, run_id, finished_at,
        error, {source_url} AS source_url, source_bytes, source_etag, source_last_modified, source_sha256,
        {contract_fingerprint} AS contract_fingerprint, {warnings} AS warnings
   FROM {log}
  WHERE source_month IS NOT NULL
  ORDER BY table_name, source_month, id DESC)
UNION ALL
(SELECT DISTINCT ON (table_name, source_month)
        'load' AS kind, service, source_month, status, rows_in_target, run_id, finished_at,
        error, {source_url} AS source_url, source_bytes, source_etag, source_last_modified, source_sha256,
        {contract_fingerprint} AS contract_fingerprint, {warnings} AS warnings
   FROM {log}
  WHERE source_month IS NOT NULL AND status = 'loaded'
  ORDER BY table_name, source_month, id DESC);
