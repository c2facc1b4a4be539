-- Replace one source month from its staging table. The month's rows and its ingestion-log row
-- commit together or not at all; the ASSERT fails (and rolls back) the whole transaction if
-- the month does not end up with exactly the rows of the parquet file.
BEGIN TRANSACTION;
DELETE FROM {table} WHERE source_month = @month;
INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage};
ASSERT (SELECT COUNT(*) FROM {table} WHERE source_month = @month) = @rows_loaded
  AS 'rows in the month after the load differ from the rows in the parquet file';
INSERT INTO {log} (target_table, service, month, source_uri, source_sha256, rows_loaded,
                   rows_in_target, run_id, status, finished_at, contract_fingerprint, source_kind,
                   source_format, quality, warnings)
SELECT @target_table, @service, @month, @source_uri, @source_sha256, @rows_loaded, COUNT(*),
       @run_id, 'loaded', CURRENT_TIMESTAMP(), @contract_fingerprint, @source_kind, @source_format,
       NULLIF(@quality, ''), NULLIF(@warnings, '')
FROM {table} WHERE source_month = @month;
COMMIT TRANSACTION;
