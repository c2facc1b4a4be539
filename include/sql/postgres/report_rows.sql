-- Rows of each month of a table after its latest successful load, for months in [$2, $3).
SELECT DISTINCT ON (source_month) source_month, rows_in_target
FROM {log}
WHERE table_name = $1 AND status = 'loaded' AND source_month >= $2 AND source_month < $3
ORDER BY source_month, id DESC;
