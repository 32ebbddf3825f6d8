//! COMMENT ON every function pgrx generates (the hand-written ones carry theirs in their own
//! SQL), so that `\df+ llm_sql.*` says what each one does.

pgrx::extension_sql!(
    r#"
COMMENT ON FUNCTION llm_sql.execute(text) IS
    'Runs DuckDB statements (DDL, DML, COPY, ...) and returns the number of rows they changed';
COMMENT ON FUNCTION llm_sql.create_view(text, text, boolean) IS
    'Creates a Postgres view over one DuckDB query, typed from its result';
COMMENT ON FUNCTION llm_sql.duckdb_settings() IS 'The effective DuckDB settings of this backend';
COMMENT ON FUNCTION llm_sql.duckdb_reset() IS
    'Drops this backend''s DuckDB; the next call opens a fresh one (DISCARD ALL does the same)';
COMMENT ON FUNCTION llm_sql.detach(text, boolean) IS
    'Detaches an attachment in this session and forgets it for later sessions';
COMMENT ON FUNCTION llm_sql.import_schema(text, text, boolean) IS
    'Creates foreign tables for an attachment''s tables, so that Postgres SQL can read them';
COMMENT ON FUNCTION llm_sql.ask(text, jsonb) IS
    'Answers a question about the data: writes read-only SQL with the LLM, runs it as the caller, returns the rows';
COMMENT ON FUNCTION llm_sql.ask_full(text, jsonb) IS
    'ask with everything about the answer: status, SQL, explanation, confidence, rows, engine, timings';
COMMENT ON FUNCTION llm_sql.generate_sql(text, jsonb) IS
    'The SQL ask would run for a question, without running it';
COMMENT ON FUNCTION llm_sql.explain_sql(text) IS 'Explains a SQL statement in plain words with the LLM';
COMMENT ON FUNCTION llm_sql.clear_cache() IS
    'Empties ask''s cache of generated SQL; returns the number of entries removed';
COMMENT ON FUNCTION llm_sql.generate(text, text, text, jsonb) IS
    'One completion of a prompt by the LLM server (NULL prompt: NULL)';
COMMENT ON FUNCTION llm_sql.chat(jsonb, text, jsonb) IS
    'The LLM''s reply to a list of chat messages, as a message object';
COMMENT ON FUNCTION llm_sql.llm_health() IS
    'Whether the LLM server answers, and which chat and embedding models are usable';
COMMENT ON FUNCTION llm_sql_internal.fdw_validator(text[], oid) IS
    'Validator of the llm_sql_fdw foreign data wrapper (called by Postgres)';
"#,
    name = "comments",
    finalize,
);
