INSERT INTO {log} (
    target, table_name, service, source_month, source_url, source_bytes, source_etag,
    source_last_modified, source_sha256, rows_read, rows_written, rows_in_target, started_at,
    finished_at, status, error, run_id, contract_fingerprint, source_kind, source_format,
    quality, warnings
) VALUES (
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, clock_timestamp(), $14, $15, $16,
    $17, $18, $19, $20, $21
);
