-- Serialise work on one (table, key) until the transaction ends: key 0 guards DDL, a month key
-- (YYYYMM) guards the load of that month; other months go on in parallel.
SELECT pg_advisory_xact_lock(hashtext({table_name}), {key});
