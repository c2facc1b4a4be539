-- The last successful load of a month: which lake file it was, how many rows it left, and
-- (from the log's columns of this version on) under which contract. `*`, not a column list:
-- a log table created by an older version lacks the newer columns until the next load.
SELECT *
FROM {log}
WHERE target_table = @target_table AND month = @month AND status = 'loaded'
ORDER BY finished_at DESC
LIMIT 1;
