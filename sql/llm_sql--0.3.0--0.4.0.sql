-- llm_sql 0.3.0 -> 0.4.0: ALTER EXTENSION llm_sql UPDATE.
--
-- Columnar copies of local tables in each session's DuckDB: llm_sql.warm builds one now, and
-- llm_sql.local_copies lists them. Nothing else changes; all data is kept.
\echo Use "ALTER EXTENSION llm_sql UPDATE" to load this file. \quit

CREATE FUNCTION llm_sql.warm(tbl regclass) RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'warm_copy_wrapper';
COMMENT ON FUNCTION llm_sql.warm(regclass) IS
    'Copies a table into this session''s DuckDB now, for pg.<schema>.<table> to read; returns the rows copied';

CREATE FUNCTION llm_sql.local_copies(
    OUT tbl regclass, OUT blocks bigint, OUT copied_blocks bigint, OUT copied_rows bigint,
    OUT bytes bigint, OUT uses bigint, OUT last_copied_blocks bigint, OUT last_live_blocks bigint)
    RETURNS SETOF record
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'list_local_copies_wrapper';
COMMENT ON FUNCTION llm_sql.local_copies() IS
    'The tables this session''s DuckDB (for the current role) keeps copies of, and how the last statement read each';
