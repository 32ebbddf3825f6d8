-- llm_sql 0.2.0 -> 0.3.0: ALTER EXTENSION llm_sql UPDATE.
--
-- What users meet first: embed is STABLE (the pgvector idiom embeds once and uses the index);
-- the extension lives in pg_catalog and its schemas llm_sql and llm_sql_internal are members
-- (DROP EXTENSION leaves nothing); the functions only Postgres calls move to
-- llm_sql_internal; query/query_json/execute take parameters; the searches take a filter and a
-- column list; embedding jobs are kept by pg_dump and resume their counts; a status view, an
-- event trigger that ends auto-embedding of dropped tables, and a comment on every object.
-- Data (attachments, embedding jobs, queue, cache, log, key) is kept.
\echo Use "ALTER EXTENSION llm_sql UPDATE" to load this file. \quit

-- The extension moves to pg_catalog (where a fresh install puts it, like PL/pgSQL), so that
-- schema llm_sql can become one of its members. (An extension's own schema cannot be a member,
-- and ALTER EXTENSION SET SCHEMA is only for relocatable extensions: the catalog is updated as
-- CREATE EXTENSION would have written it. pg_catalog is pinned: no dependency row.)
UPDATE pg_catalog.pg_extension SET extnamespace = 'pg_catalog'::pg_catalog.regnamespace
 WHERE extname = 'llm_sql';
DELETE FROM pg_catalog.pg_depend
 WHERE classid = 'pg_catalog.pg_extension'::pg_catalog.regclass
   AND objid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'llm_sql')
   AND refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
   AND refobjid = 'llm_sql'::pg_catalog.regnamespace;
ALTER EXTENSION llm_sql ADD SCHEMA llm_sql;
COMMENT ON SCHEMA llm_sql IS 'llm_sql: DuckDB, federated queries, LLM text-to-SQL and embeddings';

-- Functions only Postgres calls, out of PUBLIC's reach and out of \df llm_sql.*.
CREATE SCHEMA llm_sql_internal;
REVOKE ALL ON SCHEMA llm_sql_internal FROM PUBLIC;
COMMENT ON SCHEMA llm_sql_internal IS 'llm_sql''s functions that only Postgres calls';
ALTER FUNCTION llm_sql._enqueue_embedding() RENAME TO enqueue_embedding;
ALTER FUNCTION llm_sql.enqueue_embedding() SET SCHEMA llm_sql_internal;
ALTER FUNCTION llm_sql.fdw_handler() SET SCHEMA llm_sql_internal;
ALTER FUNCTION llm_sql.fdw_validator(text[], oid) SET SCHEMA llm_sql_internal;
ALTER FUNCTION llm_sql.query_support(internal) SET SCHEMA llm_sql_internal;
COMMENT ON FUNCTION llm_sql_internal.enqueue_embedding() IS
    'Trigger of auto_embed: queues a changed row for embedding (called by Postgres)';
COMMENT ON FUNCTION llm_sql_internal.fdw_handler() IS
    'Handler of the llm_sql_fdw foreign data wrapper (called by Postgres)';
COMMENT ON FUNCTION llm_sql_internal.query_support(internal) IS
    'Planner support of query and query_json: their DuckDB Scan (called by Postgres)';

-- embed(text) inline: STABLE, so an index scan evaluates it once.
ALTER FUNCTION llm_sql.embed(text, text) STABLE PARALLEL RESTRICTED;

-- Parameters for DuckDB SQL.
CREATE FUNCTION llm_sql.query(sql text, VARIADIC params "any") RETURNS SETOF record
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'llm_sql_query';
COMMENT ON FUNCTION llm_sql.query(text, "any") IS
    'Runs DuckDB SQL with the values after it bound to $1, $2, ...; call with a column definition list';
CREATE FUNCTION llm_sql.query_json(sql text, VARIADIC params "any") RETURNS SETOF jsonb
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'llm_sql_query_json';
COMMENT ON FUNCTION llm_sql.query_json(text, "any") IS
    'Runs DuckDB SQL with the values after it bound to $1, $2, ...; one jsonb object per row';
CREATE FUNCTION llm_sql.execute(sql text, VARIADIC params "any") RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'llm_sql_execute_with_params';
COMMENT ON FUNCTION llm_sql.execute(text, "any") IS
    'Runs DuckDB statements with the values after them bound to $1, $2, ...; returns the rows changed';

-- The searches take a filter and a column list (new signatures: the old ones go).
DROP FUNCTION llm_sql.semantic_search(regclass, text, int, name);
DROP FUNCTION llm_sql.hybrid_search(regclass, text, name, int, name);
CREATE FUNCTION llm_sql.semantic_search(tbl regclass, query text, k int DEFAULT 10,
                                        embedding_column name DEFAULT 'embedding',
                                        filter jsonb DEFAULT NULL, columns text[] DEFAULT NULL)
    RETURNS TABLE(data jsonb, distance float8)
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'semantic_search_filtered_wrapper';
COMMENT ON FUNCTION llm_sql.semantic_search(regclass, text, int, name, jsonb, text[]) IS
    'The k rows nearest to the query by cosine distance among those matching filter; data is the row (or columns) as JSON';
CREATE FUNCTION llm_sql.hybrid_search(tbl regclass, query text, text_column name, k int DEFAULT 10,
                                      embedding_column name DEFAULT 'embedding',
                                      filter jsonb DEFAULT NULL, columns text[] DEFAULT NULL)
    RETURNS TABLE(data jsonb, score float8)
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'hybrid_search_filtered_wrapper';
COMMENT ON FUNCTION llm_sql.hybrid_search(regclass, text, name, int, name, jsonb, text[]) IS
    'Vector and full-text ranks fused by reciprocal rank fusion (k = 60), among rows matching filter';

-- Embedding jobs: counts across resumed calls, and kept by pg_dump.
ALTER TABLE llm_sql.embedding_jobs
    ADD COLUMN resumed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    ADD COLUMN rows_done_at_resume bigint NOT NULL DEFAULT 0;
UPDATE llm_sql.embedding_jobs SET resumed_at = started_at;
COMMENT ON TABLE llm_sql.embedding_jobs IS
    'The model and progress of embed_column per column (read it through llm_sql.embedding_progress)';
SELECT pg_catalog.pg_extension_config_dump('llm_sql.embedding_jobs', '');
SELECT pg_catalog.pg_extension_config_dump('llm_sql.embedding_jobs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('llm_sql.embedding_queue_id_seq', '');
DROP VIEW llm_sql.embedding_progress;
CREATE VIEW llm_sql.embedding_progress AS
SELECT j.tbl AS table_name, j.source_column, j.target_column, j.model,
       CASE WHEN j.finished_at IS NOT NULL THEN 'done'
            WHEN j.last_error IS NOT NULL THEN 'failed'
            -- state is NULL for other roles' sessions: alive counts as running then.
            WHEN a.pid IS NOT NULL AND a.state IS DISTINCT FROM 'idle'::text THEN 'running'
            ELSE 'interrupted' END AS state,
       j.rows_done, j.rows_total,
       pg_catalog.round(100.0 * j.rows_done::numeric / NULLIF(j.rows_total, 0::bigint)::numeric, 1)
           AS percent_done,
       r.rows_per_second,
       j.started_at, j.updated_at, j.finished_at, j.last_error,
       CASE WHEN j.finished_at IS NULL THEN
           pg_catalog.make_interval(secs => pg_catalog.round(
               GREATEST(j.rows_total - j.rows_done, 0::bigint)::numeric
               / NULLIF(r.rows_per_second, 0::numeric))::double precision)
       END AS time_left
  FROM llm_sql.embedding_jobs j
  CROSS JOIN LATERAL (SELECT pg_catalog.round((j.rows_done - j.rows_done_at_resume)::numeric
           / NULLIF(EXTRACT(epoch FROM j.updated_at - j.resumed_at), 0::numeric)) AS rows_per_second) r
  -- (The session reading the view is not running a backfill, even if it ran this one.)
  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = j.pid AND a.backend_start <= j.resumed_at
                                         AND a.pid <> pg_catalog.pg_backend_pid()
 WHERE pg_catalog.has_table_privilege(j.tbl, 'SELECT');
GRANT SELECT ON llm_sql.embedding_progress TO PUBLIC;
COMMENT ON VIEW llm_sql.embedding_progress IS
    'Progress of embed_column per column, across resumed calls, with the current rate and time left';

COMMENT ON TABLE llm_sql.auto_embeddings IS
    'Columns that auto_embed keeps up to date: source, model and the role the worker writes as';
COMMENT ON TABLE llm_sql.embedding_queue IS
    'Rows of auto-embedded columns waiting for an embedding (each role sees those of tables it may read)';

-- One row per embedded column: its model, what auto-embedding still has to do, whether a worker
-- serves this database, and the progress of embed_column.
CREATE VIEW llm_sql.embedding_status AS
WITH embedded AS (
    SELECT tbl, target_column FROM llm_sql.auto_embeddings
    UNION
    SELECT tbl, target_column FROM llm_sql.embedding_jobs),
queued AS (
    SELECT q.tbl, q.target_column, pg_catalog.count(*) AS rows_pending,
           pg_catalog.count(*) FILTER (WHERE q.last_error IS NOT NULL) AS rows_failing,
           (pg_catalog.array_agg(q.last_error ORDER BY q.next_attempt_at DESC)
              FILTER (WHERE q.last_error IS NOT NULL))[1] AS last_error,
           pg_catalog.min(q.enqueued_at) AS oldest_pending
      FROM llm_sql.embedding_queue q GROUP BY q.tbl, q.target_column)
SELECT e.tbl AS table_name, e.target_column,
       COALESCE(c.source_column, j.source_column) AS source_column,
       COALESCE(c.model, j.model) AS model,
       c.tbl IS NOT NULL AS auto_embed,
       COALESCE(q.rows_pending, 0::bigint) AS rows_pending,
       COALESCE(q.rows_failing, 0::bigint) AS rows_failing,
       q.oldest_pending,
       COALESCE(q.last_error, p.last_error) AS last_error,
       EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity w
                WHERE w.backend_type = 'llm_sql embedding worker'::text
                  AND w.datname = pg_catalog.current_database()) AS worker_running,
       p.state AS backfill_state, p.rows_done AS backfill_rows_done,
       p.rows_total AS backfill_rows_total, p.percent_done AS backfill_percent_done,
       p.time_left AS backfill_time_left
  FROM embedded e
  LEFT JOIN llm_sql.auto_embeddings c
         ON c.tbl::oid = e.tbl::oid AND c.target_column = e.target_column
  LEFT JOIN llm_sql.embedding_jobs j
         ON j.tbl::oid = e.tbl::oid AND j.target_column = e.target_column
  LEFT JOIN queued q ON q.tbl::oid = e.tbl::oid AND q.target_column = e.target_column
  LEFT JOIN llm_sql.embedding_progress p
         ON p.table_name::oid = e.tbl::oid AND p.target_column = e.target_column
 WHERE pg_catalog.has_table_privilege(e.tbl, 'SELECT');
GRANT SELECT ON llm_sql.embedding_status TO PUBLIC;
COMMENT ON VIEW llm_sql.embedding_status IS
    'Per embedded column: model, rows queued and failing, last error, whether a worker runs, backfill progress';

-- Dropping a table (or its source or target column) ends its auto-embedding and forgets its
-- queued rows and jobs.
CREATE FUNCTION llm_sql_internal.forget_dropped() RETURNS event_trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'llm_sql_forget_dropped';
COMMENT ON FUNCTION llm_sql_internal.forget_dropped() IS
    'Event trigger: dropping a table or column ends its auto-embedding (called by Postgres)';
REVOKE EXECUTE ON FUNCTION llm_sql_internal.forget_dropped() FROM PUBLIC;
CREATE EVENT TRIGGER llm_sql_forget_dropped ON sql_drop
    EXECUTE FUNCTION llm_sql_internal.forget_dropped();

-- A comment on every function and table.
COMMENT ON TABLE llm_sql.examples IS
    'Worked question/SQL examples; those sharing most words with a question go into ask''s prompt';
COMMENT ON TABLE llm_sql.ask_cache IS 'SQL that answered a question before, reused by ask (llm_sql''s functions only)';
COMMENT ON TABLE llm_sql.ask_log IS 'Every call of ask, ask_full and generate_sql (each role sees its own)';
COMMENT ON TABLE llm_sql.llm_api_key IS
    'The LLM server''s API key (set with llm_sql.set_llm_api_key; llm_sql''s owner only)';
COMMENT ON TABLE llm_sql.attachment_registry IS
    'Attachments remembered across sessions (llm_sql''s owner only; see llm_sql.attachments())';
COMMENT ON TABLE llm_sql.attachment_grants IS
    'Roles that may use each remembered attachment (see grant_attachment)';
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
