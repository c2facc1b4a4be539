-- A COPY stream's commit is flushed before it returns, whatever the server's synchronous_commit:
-- VACUUM sets no hint bit (and marks no page all-visible) for rows of a commit whose WAL is not
-- yet on disk, and the VACUUM after the streams is what spares the month's first reader.
SET LOCAL synchronous_commit = on;
