-- llm_sql 0.1.0 -> 0.2.0: ALTER EXTENSION llm_sql UPDATE.
--
-- No role gains power through llm_sql: the internal functions behind the SQL wrappers and the
-- PL/pgSQL procedures (which resolved names through the caller's search_path and were
-- executable by PUBLIC) give way to C functions and procedures with the same signatures; the
-- LLM API key moves from a setting to a table only llm_sql's owner reads; the trigger function
-- of auto_embed, the FDW handler and validator and the planner support function are no longer
-- executable by PUBLIC. Data (attachments, embedding jobs, queue, cache, log) is kept.
\echo Use "ALTER EXTENSION llm_sql UPDATE" to load this file. \quit

-- Embeddings: procedures and functions in C, no internal functions.
DROP PROCEDURE llm_sql.embed_column(regclass, name, name, int, text);
DROP PROCEDURE llm_sql.process_embedding_queue(int);
DROP FUNCTION llm_sql.auto_embed(regclass, name, name, text);
DROP FUNCTION llm_sql.disable_auto_embed(regclass, name);
DROP FUNCTION llm_sql.semantic_search(regclass, text, int, name);
DROP FUNCTION llm_sql.hybrid_search(regclass, text, name, int, name);
DROP FUNCTION llm_sql._embed_column_start(oid, text, text, text);
DROP FUNCTION llm_sql._embed_column_batch(bigint, oid, text, text, int, text, text);
DROP FUNCTION llm_sql._embed_column_finish(bigint);
DROP FUNCTION llm_sql._embed_column_failed(bigint, text);
DROP FUNCTION llm_sql._auto_embed(oid, text, text, text);
DROP FUNCTION llm_sql._disable_auto_embed(oid, text);
DROP FUNCTION llm_sql._process_embedding_queue_batch(int);
DROP FUNCTION llm_sql._semantic_search(oid, text, int, text);
DROP FUNCTION llm_sql._hybrid_search(oid, text, text, int, text);

CREATE PROCEDURE llm_sql.embed_column(tbl regclass, source_column name, target_column name,
                                      batch_size int DEFAULT NULL, model text DEFAULT NULL)
    LANGUAGE c AS 'MODULE_PATHNAME', 'llm_sql_embed_column';
COMMENT ON PROCEDURE llm_sql.embed_column(regclass, name, name, int, text) IS
    'Fills every row whose target is NULL and whose source has text, committing each batch; resumable';

CREATE PROCEDURE llm_sql.process_embedding_queue(max_rows int DEFAULT NULL)
    LANGUAGE c AS 'MODULE_PATHNAME', 'llm_sql_process_embedding_queue';
COMMENT ON PROCEDURE llm_sql.process_embedding_queue(int) IS
    'Embeds the queued rows of auto-embedded columns now, committing each batch';

CREATE FUNCTION llm_sql.auto_embed(tbl regclass, source_column name, target_column name,
                                   model text DEFAULT NULL) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'start_auto_embed_wrapper';
COMMENT ON FUNCTION llm_sql.auto_embed(regclass, name, name, text) IS
    'Keeps a vector column up to date: triggers queue changed rows, the worker embeds them';

CREATE FUNCTION llm_sql.disable_auto_embed(tbl regclass, target_column name) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'stop_auto_embed_wrapper';
COMMENT ON FUNCTION llm_sql.disable_auto_embed(regclass, name) IS
    'Stops auto_embed for a column: drops its triggers, its setting and its queued rows';

CREATE FUNCTION llm_sql.semantic_search(tbl regclass, query text, k int DEFAULT 10,
                                        embedding_column name DEFAULT 'embedding')
    RETURNS TABLE(data jsonb, distance float8)
    LANGUAGE c STRICT VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'semantic_search_rows_wrapper';
COMMENT ON FUNCTION llm_sql.semantic_search(regclass, text, int, name) IS
    'The k rows nearest to the query by cosine distance; data is the row as JSON without the vector';

CREATE FUNCTION llm_sql.hybrid_search(tbl regclass, query text, text_column name, k int DEFAULT 10,
                                      embedding_column name DEFAULT 'embedding')
    RETURNS TABLE(data jsonb, score float8)
    LANGUAGE c STRICT VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'hybrid_search_rows_wrapper';
COMMENT ON FUNCTION llm_sql.hybrid_search(regclass, text, name, int, name) IS
    'Vector and full-text ranks fused by reciprocal rank fusion (k = 60)';

-- Only ever run by the triggers auto_embed creates (as llm_sql's owner). Existing triggers
-- keep working: Postgres checks EXECUTE when a trigger is created, not when it fires.
REVOKE EXECUTE ON FUNCTION llm_sql._enqueue_embedding() FROM PUBLIC;

-- Defaults and the progress view, written so that nothing on CREATE EXTENSION's search_path
-- but pg_catalog can be bound into them.
ALTER TABLE llm_sql.embedding_jobs
    ALTER COLUMN started_at SET DEFAULT pg_catalog.now(),
    ALTER COLUMN updated_at SET DEFAULT pg_catalog.now();
ALTER TABLE llm_sql.auto_embeddings ALTER COLUMN created_at SET DEFAULT pg_catalog.now();
ALTER TABLE llm_sql.embedding_queue
    ALTER COLUMN enqueued_at SET DEFAULT pg_catalog.now(),
    ALTER COLUMN next_attempt_at SET DEFAULT pg_catalog.now();
CREATE OR REPLACE VIEW llm_sql.embedding_progress AS
SELECT j.tbl AS table_name, j.source_column, j.target_column, j.model,
       CASE WHEN j.finished_at IS NOT NULL THEN 'done'
            WHEN j.last_error IS NOT NULL THEN 'failed'
            -- state is NULL for other roles' sessions: alive counts as running then.
            WHEN a.pid IS NOT NULL AND a.state IS DISTINCT FROM 'idle'::text THEN 'running'
            ELSE 'interrupted' END AS state,
       j.rows_done, j.rows_total,
       pg_catalog.round(100.0 * j.rows_done::numeric / NULLIF(j.rows_total, 0::bigint)::numeric, 1)
           AS percent_done,
       pg_catalog.round(j.rows_done::numeric
           / NULLIF(EXTRACT(epoch FROM j.updated_at - j.started_at), 0::numeric))
           AS rows_per_second,
       j.started_at, j.updated_at, j.finished_at, j.last_error
  FROM llm_sql.embedding_jobs j
  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = j.pid AND a.backend_start <= j.started_at
 WHERE pg_catalog.has_table_privilege(j.tbl, 'SELECT');

-- Attachments: the C functions themselves, with their documented signatures.
DROP FUNCTION llm_sql.attach(text, text, text, boolean, boolean);
DROP FUNCTION llm_sql.attachments();
DROP FUNCTION llm_sql.grant_attachment(text, name);
DROP FUNCTION llm_sql.revoke_attachment(text, name);
DROP FUNCTION llm_sql.attach_internal(text, text, text, boolean, boolean);
DROP FUNCTION llm_sql.attachments_internal();
DROP FUNCTION llm_sql.grant_attachment_internal(text, text);
DROP FUNCTION llm_sql.revoke_attachment_internal(text, text);

CREATE FUNCTION llm_sql.attach(alias text, dsn text, type text DEFAULT NULL,
                               read_only boolean DEFAULT true, persist boolean DEFAULT true)
    RETURNS jsonb LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'attach_database_wrapper';
COMMENT ON FUNCTION llm_sql.attach(text, text, text, boolean, boolean) IS
    'Attaches a SQLite or DuckDB file, or a PostgreSQL or MySQL server, to DuckDB under an alias';

CREATE FUNCTION llm_sql.attachments() RETURNS TABLE (
	"alias" TEXT,
	"type" TEXT,
	"dsn" TEXT,
	"read_only" bool,
	"persistent" bool,
	"attached_in_session" bool,
	"owner" name,
	"created_at" timestamp with time zone
)
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'attachments_wrapper';
COMMENT ON FUNCTION llm_sql.attachments() IS
    'The attachments you may use (passwords shown as ********)';

CREATE FUNCTION llm_sql.grant_attachment(alias text, role name) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'grant_attachment_wrapper';
COMMENT ON FUNCTION llm_sql.grant_attachment(text, name) IS
    'Lets a role (and its members) use an attachment; its owner or a superuser may';

CREATE FUNCTION llm_sql.revoke_attachment(alias text, role name) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'revoke_attachment_wrapper';
COMMENT ON FUNCTION llm_sql.revoke_attachment(text, name) IS
    'Takes back what grant_attachment gave';

-- The model list, in C.
DROP FUNCTION llm_sql.models();
DROP FUNCTION llm_sql._models();
CREATE FUNCTION llm_sql.models() RETURNS TABLE (
	"name" TEXT,
	"size" bigint,
	"modified_at" timestamp with time zone
)
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'models_wrapper';
COMMENT ON FUNCTION llm_sql.models() IS 'The models the LLM server offers';

-- The LLM API key: no longer the setting llm_sql.llm_api_key, which other roles could read.
CREATE TABLE llm_sql.llm_api_key (
    api_key text NOT NULL,
    set_by oid NOT NULL,
    set_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE UNIQUE INDEX llm_api_key_one_row ON llm_sql.llm_api_key ((true));
REVOKE ALL ON llm_sql.llm_api_key FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('llm_sql.llm_api_key', '');

CREATE FUNCTION llm_sql.set_llm_api_key(
	"key" TEXT
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'set_llm_api_key_wrapper';
COMMENT ON FUNCTION llm_sql.set_llm_api_key(text) IS
    'Sets the LLM server''s API key (NULL removes it); superusers and llm_sql''s owner only';

-- Called by Postgres itself, which does not check EXECUTE.
REVOKE EXECUTE ON FUNCTION llm_sql.fdw_handler(), llm_sql.fdw_validator(text[], oid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION llm_sql.query_support(internal) FROM PUBLIC;
