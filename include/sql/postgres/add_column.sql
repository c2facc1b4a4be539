-- A column declared in the contract after the table was created.
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {type};
