-- Per service and source month, the latest build attempt and the latest successful build
-- (include/taxi/postgres/models_log.py, ModelsLog.records): the log alone, never fct_trips.
(SELECT DISTINCT ON (service, source_month)
        'latest' AS kind, service, source_month, status, rows_built, run_id, finished_at, error
   FROM {log}
  ORDER BY service, source_month, id DESC)
UNION ALL
(SELECT DISTINCT ON (service, source_month)
        'load' AS kind, service, source_month, status, rows_built, run_id, finished_at, error
   FROM {log}
  WHERE status = 'loaded'
  ORDER BY service, source_month, id DESC);
