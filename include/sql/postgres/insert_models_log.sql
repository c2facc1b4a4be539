INSERT INTO {log} (service, source_month, status, rows_built, run_id, error)
VALUES ($1, $2, $3, $4, $5, $6);
