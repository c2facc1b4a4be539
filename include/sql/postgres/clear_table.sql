-- DELETE, not TRUNCATE: TRUNCATE is not MVCC-safe for readers in other snapshots.
DELETE FROM {table};
