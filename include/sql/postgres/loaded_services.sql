-- The services whose trip table holds a load of the month, by the ingestion log.
SELECT DISTINCT service FROM {log} WHERE source_month = $1 AND status = 'loaded';
