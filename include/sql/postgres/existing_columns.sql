-- The columns a table has now (none: it does not exist), so DDL runs only when something is
-- missing: ALTER TABLE takes an ACCESS EXCLUSIVE lock even when it ends up doing nothing.
SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2;
