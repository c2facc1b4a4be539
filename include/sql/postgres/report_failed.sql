-- Months in [$2, $3) of a table whose latest attempt failed (the report marks them).
SELECT source_month
FROM (
    SELECT DISTINCT ON (source_month) source_month, status
    FROM {log}
    WHERE table_name = $1 AND source_month >= $2 AND source_month < $3
    ORDER BY source_month, id DESC
) AS latest
WHERE status = 'failed';
