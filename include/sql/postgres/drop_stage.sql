-- A failed load with several COPY streams: its stage was committed, so it is dropped (under the
-- month's lock, in the load's own transaction, rolled back to before the stage was filled).
DROP TABLE IF EXISTS {stage};
