-- One row per (service, source month) each taxi_models run built or tried to build
-- (include/taxi/postgres/models_log.py): what the Taxi months page's Models column reads.
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {log} (
    id           bigserial PRIMARY KEY,
    service      text NOT NULL,
    source_month date NOT NULL,
    status       text NOT NULL CHECK (status IN ('loaded', 'failed')),
    rows_built   bigint,
    run_id       text,
    error        text,
    finished_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS {log_index} ON {log} (service, source_month, id DESC);
