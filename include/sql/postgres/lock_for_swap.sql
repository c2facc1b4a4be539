-- The partition swap needs the parent table ACCESS EXCLUSIVE, and while that request waits
-- every new query of the table queues behind it: wait only briefly, then let them pass (the
-- caller retries). Parent first, then its partitions, the order readers lock them in.
SET LOCAL lock_timeout = {timeout};
LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;
