-- A failed attempt at a month (the lake file refused, the load or its transaction failed):
-- nothing of the month changed, so this row stands alone. rows_loaded and rows_in_target are
-- 0 (the columns are REQUIRED): readers of rows take them from 'loaded' rows only.
INSERT INTO {log} (target_table, service, month, source_uri, source_sha256, rows_loaded,
                   rows_in_target, run_id, status, finished_at, contract_fingerprint, error)
VALUES (@target_table, @service, @month, @source_uri, @source_sha256, 0, 0, @run_id, 'failed',
        CURRENT_TIMESTAMP(), @contract_fingerprint, @error);
