-- The new month is written to a table no reader can see yet. Its columns come from the contract,
-- not from LIKE the parent: LIKE would hold a lock on the parent for the whole COPY, and two
-- months loading at once would then deadlock when they swap. The CHECK lets ATTACH skip its
-- validation scan. One COPY stream: created inside the load transaction (if the load dies, it
-- never existed). Several: committed first, so that their sessions can write to it; a stage a
-- killed load left behind is dropped here, under the month's lock.
DROP TABLE IF EXISTS {stage};
CREATE TABLE {stage} (
    {columns},
    CONSTRAINT {check_name} CHECK (source_month = {month})
);
