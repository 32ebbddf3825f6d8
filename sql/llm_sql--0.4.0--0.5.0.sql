-- llm_sql 0.4.0 -> 0.5.0: ALTER EXTENSION llm_sql UPDATE.
--
-- Stored copies: llm_sql.warm stores a table's copy in the data directory for every session
-- when the caller may maintain the table, and llm_sql.local_copies says which copies are
-- stored. Nothing else changes; all data is kept.
\echo Use "ALTER EXTENSION llm_sql UPDATE" to load this file. \quit

COMMENT ON FUNCTION llm_sql.warm(regclass) IS
    'Copies a table now for pg.<schema>.<table> to read: stored for every session of the database when the caller may maintain the table, else into this session''s DuckDB; returns the rows copied';

DROP FUNCTION llm_sql.local_copies();
CREATE FUNCTION llm_sql.local_copies(
    OUT tbl regclass, OUT blocks bigint, OUT copied_blocks bigint, OUT copied_rows bigint,
    OUT bytes bigint, OUT uses bigint, OUT last_copied_blocks bigint, OUT last_live_blocks bigint,
    OUT stored boolean)
    RETURNS SETOF record
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'local_copies_listing_wrapper';
COMMENT ON FUNCTION llm_sql.local_copies() IS
    'The copies of tables this session''s DuckDB (for the current role) reads, stored for every session or its own, and how the last statement read each';
