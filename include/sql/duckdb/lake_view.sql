-- One raw table of the lake as a DuckDB view: every parquet file {files} matches (a glob),
-- columns matched by name across months.
CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet({files}, union_by_name = true);
