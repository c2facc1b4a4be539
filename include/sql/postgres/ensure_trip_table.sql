-- The trip table of one service: one LIST partition per source month, so a month can be
-- swapped in whole. {columns} are rendered from the schema contract (include/taxi/contract.py).
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {table} (
    {columns}
) PARTITION BY LIST (source_month);
