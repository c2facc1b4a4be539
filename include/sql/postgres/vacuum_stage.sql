-- Rows COPYed by several sessions cannot be written frozen (FREEZE needs the table created in
-- the COPY's own transaction). A plain VACUUM before the swap sets their hint bits and marks the
-- pages all-visible, so the month's first reader does not rewrite every page; VACUUM (FREEZE)
-- cost ~5x as much (docs/performance.md, "Parallel COPY of one month"). Runs outside a transaction block.
VACUUM {stage};
