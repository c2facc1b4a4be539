-- fct_trips' rows of one source month per service (its index on source_month finds them).
SELECT service, count(*) FROM {fct_trips} WHERE source_month = $1 GROUP BY service;
