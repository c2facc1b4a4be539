-- Replace the month: readers see the old partition until COMMIT, the new one after it.
DROP TABLE IF EXISTS {partition};
ALTER TABLE {stage} RENAME TO {partition_name};
ALTER TABLE {table} ATTACH PARTITION {partition} FOR VALUES IN ({month});
