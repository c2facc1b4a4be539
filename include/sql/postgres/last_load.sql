-- The latest successful load of a table's month (NULL month: a whole-table load).
SELECT id, source_bytes, source_etag, source_last_modified, source_sha256, rows_in_target, finished_at,
       contract_fingerprint, source_url
FROM {log}
WHERE table_name = $1 AND source_month IS NOT DISTINCT FROM $2 AND status = 'loaded'
ORDER BY id DESC
LIMIT 1;
