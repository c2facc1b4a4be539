-- Set on every connection of a load (include/taxi/postgres/session.py says why).
SET statement_timeout = {statement_timeout};
SET idle_in_transaction_session_timeout = {idle_timeout};
