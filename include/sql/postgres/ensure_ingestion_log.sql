-- One row per load attempt of a (target table, month). A 'loaded' row is written in the same
-- transaction as the data it describes, so the log never claims a load that did not commit.
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {log} (
    id                   bigserial PRIMARY KEY,
    target               text NOT NULL,
    table_name           text NOT NULL,
    service              text NOT NULL,
    source_month         date,
    source_url           text NOT NULL,
    source_bytes         bigint,
    source_etag          text,
    source_last_modified text,
    source_sha256        text,
    rows_read            bigint,
    rows_written         bigint,
    rows_in_target       bigint,
    started_at           timestamptz NOT NULL,
    finished_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    status               text NOT NULL CHECK (status IN ('loaded', 'unchanged', 'failed')),
    error                text,
    run_id               text
);
CREATE INDEX IF NOT EXISTS {log_index} ON {log} (table_name, source_month, finished_at DESC);
-- Columns added after the first release: a log created by an older version gains them here.
-- (Each new column: one line below, and its name in ingestion_log.LOG_COLUMNS.)
ALTER TABLE {log} ADD COLUMN IF NOT EXISTS contract_fingerprint text;
ALTER TABLE {log} ADD COLUMN IF NOT EXISTS source_kind text;
ALTER TABLE {log} ADD COLUMN IF NOT EXISTS source_format text;
ALTER TABLE {log} ADD COLUMN IF NOT EXISTS quality jsonb;
ALTER TABLE {log} ADD COLUMN IF NOT EXISTS warnings jsonb;
