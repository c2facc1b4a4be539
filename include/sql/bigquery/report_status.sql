-- Every attempt at a table's months in [@first, @last), oldest first (the last one wins).
SELECT month, status
FROM {log}
WHERE target_table = @target_table AND month >= @first AND month < @last
ORDER BY finished_at;
