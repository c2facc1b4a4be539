-- Sessions holding a lock on a table (or one of its partitions): named in the error of a swap
-- that could not get its lock.
SELECT DISTINCT a.pid, a.state, a.xact_start, left(a.query, 120)
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.granted AND l.pid <> pg_backend_pid() AND n.nspname = $1
  AND (c.relname = $2 OR c.oid IN (SELECT inhrelid FROM pg_inherits
                                   WHERE inhparent = format('%I.%I', $1, $2)::regclass))
ORDER BY a.pid;
