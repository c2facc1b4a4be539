-- The new month is written to a table no reader can see yet. The CHECK lets ATTACH skip its
-- validation scan. Created inside the load transaction: if the load dies, it never existed.
CREATE TABLE {stage} (
    LIKE {table},
    CONSTRAINT {check_name} CHECK (source_month = {month})
);
