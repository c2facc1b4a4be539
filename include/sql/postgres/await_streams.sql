-- The load's transaction holds the month's lock while its COPY streams run on other sessions:
-- idle meanwhile, for as long as a statement may run (session.py), not the usual idle limit.
SET LOCAL idle_in_transaction_session_timeout = {timeout};
