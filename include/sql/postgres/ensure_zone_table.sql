-- The taxi-zone lookup: small and replaced whole on every load.
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {table} (
    {columns}
);
