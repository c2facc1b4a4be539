-- The last successful load of a month: which lake file it was and how many rows it left.
SELECT source_uri, source_sha256, rows_in_target, contract_fingerprint
FROM {log}
WHERE target_table = @target_table AND month = @month AND status = 'loaded'
ORDER BY finished_at DESC
LIMIT 1;
