-- Rows of one source month in a trip table.
SELECT COUNT(*) AS n FROM {table} WHERE source_month = @month;
