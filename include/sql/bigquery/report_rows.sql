-- Every successful load of a table's months in [@first, @last), oldest first (the last wins).
SELECT month, rows_in_target
FROM {log}
WHERE target_table = @target_table AND status = 'loaded' AND month >= @first AND month < @last
ORDER BY finished_at;
