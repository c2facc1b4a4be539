-- Rows of the latest successful load of each month before $2, newest month first: the
-- trailing months a new month's row count is compared with (quality rule far_below_trailing_median).
SELECT rows_in_target FROM (
    SELECT DISTINCT ON (source_month) source_month, rows_in_target
    FROM {log}
    WHERE table_name = $1 AND source_month < $2 AND status = 'loaded'
    ORDER BY source_month DESC, id DESC
) AS latest
ORDER BY source_month DESC
LIMIT $3;
