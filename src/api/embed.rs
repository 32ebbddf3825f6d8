//! SQL surface of embeddings into pgvector columns: embed_column (backfill), auto_embed and
//! its queue, and the searches. The procedures are PL/pgSQL so that they can COMMIT between
//! batches; the work of each batch is in Rust (`crate::embeddings`).

use pgrx::datum::JsonB;
use pgrx::pg_sys::Oid;
use pgrx::prelude::*;

use crate::embeddings::{self, backfill, queue, search};
use crate::error::{Error, OrReport};
use crate::llm;

#[pg_extern(volatile, parallel_unsafe, name = "_embed_column_start")]
fn embed_column_start(
    tbl: Oid,
    source_column: &str,
    target_column: &str,
    model: Option<&str>,
) -> TableIterator<
    'static,
    (
        name!(job, i64),
        name!(rows_total, i64),
        name!(model, String),
    ),
> {
    let model = llm::embedding_model(model).or_report();
    let (job, total) = backfill::start(tbl, source_column, target_column, &model).or_report();
    TableIterator::once((job, total, model))
}

#[pg_extern(volatile, parallel_unsafe, name = "_embed_column_batch")]
fn embed_column_batch(
    job: i64,
    tbl: Oid,
    source_column: &str,
    target_column: &str,
    batch_size: Option<i32>,
    model: &str,
    after: &str,
) -> TableIterator<'static, (name!(embedded, i64), name!(next, Option<String>))> {
    let batch_size = embeddings::batch_size(batch_size).or_report();
    let (embedded, next) = backfill::batch(
        job,
        tbl,
        source_column,
        target_column,
        batch_size,
        model,
        after,
    )
    .or_report();
    TableIterator::once((embedded, next))
}

#[pg_extern(volatile, parallel_unsafe, name = "_embed_column_finish")]
fn embed_column_finish(job: i64) {
    backfill::finish(job).or_report()
}

#[pg_extern(volatile, parallel_unsafe, name = "_embed_column_failed")]
fn embed_column_failed(job: i64, error: &str) {
    backfill::failed(job, error).or_report()
}

#[pg_extern(volatile, parallel_unsafe, name = "_auto_embed")]
fn auto_embed(tbl: Oid, source_column: &str, target_column: &str, model: Option<&str>) -> i64 {
    let model = llm::embedding_model(model).or_report();
    queue::enable(tbl, source_column, target_column, &model).or_report()
}

#[pg_extern(volatile, parallel_unsafe, name = "_disable_auto_embed")]
fn disable_auto_embed(tbl: Oid, target_column: &str) {
    queue::disable(tbl, target_column).or_report()
}

/// One batch of the queue: superusers drain every column, other roles the columns set up by
/// roles they belong to.
#[pg_extern(volatile, parallel_unsafe, name = "_process_embedding_queue_batch")]
fn process_embedding_queue_batch(max_rows: i32) -> i64 {
    if max_rows < 1 {
        Error::invalid_parameter("max_rows must be at least 1").report();
    }
    // SAFETY: reads whether the current user is a superuser.
    let everything = unsafe { pgrx::pg_sys::superuser() };
    queue::process_batch(max_rows as usize, everything).or_report()
}

#[pg_extern(volatile, parallel_unsafe, name = "_semantic_search")]
fn semantic_search(
    tbl: Oid,
    query: &str,
    k: i32,
    embedding_column: &str,
) -> TableIterator<'static, (name!(data, JsonB), name!(distance, f64))> {
    TableIterator::new(search::semantic(tbl, query, k, embedding_column).or_report())
}

#[pg_extern(volatile, parallel_unsafe, name = "_hybrid_search")]
fn hybrid_search(
    tbl: Oid,
    query: &str,
    text_column: &str,
    k: i32,
    embedding_column: &str,
) -> TableIterator<'static, (name!(data, JsonB), name!(score, f64))> {
    TableIterator::new(search::hybrid(tbl, query, text_column, k, embedding_column).or_report())
}

/// `llm_sql._enqueue_embedding()`, the trigger function of auto_embed.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn llm_sql_enqueue_embedding(
    fcinfo: pgrx::pg_sys::FunctionCallInfo,
) -> pgrx::pg_sys::Datum {
    // SAFETY: Postgres calls this as a trigger; the function checks the context.
    unsafe { queue::enqueue_from_trigger(fcinfo) }.or_report();
    pgrx::pg_sys::Datum::from(0)
}

finfo_v1!(pg_finfo_llm_sql_enqueue_embedding);

pgrx::extension_sql!(
    r#"
-- Progress of embed_column, one row per column, updated with every committed batch.
CREATE TABLE llm_sql.embedding_jobs (
    id bigserial PRIMARY KEY,
    tbl regclass NOT NULL,
    source_column name NOT NULL,
    target_column name NOT NULL,
    model text NOT NULL,
    rows_total bigint NOT NULL DEFAULT 0,
    rows_done bigint NOT NULL DEFAULT 0,
    pid int,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    last_error text,
    UNIQUE (tbl, target_column)
);
REVOKE ALL ON llm_sql.embedding_jobs FROM PUBLIC;

CREATE VIEW llm_sql.embedding_progress AS
SELECT j.tbl AS table_name, j.source_column, j.target_column, j.model,
       CASE WHEN j.finished_at IS NOT NULL THEN 'done'
            WHEN j.last_error IS NOT NULL THEN 'failed'
            -- state is NULL for other roles' sessions: alive counts as running then.
            WHEN a.pid IS NOT NULL AND a.state IS DISTINCT FROM 'idle' THEN 'running'
            ELSE 'interrupted' END AS state,
       j.rows_done, j.rows_total,
       round(100.0 * j.rows_done / nullif(j.rows_total, 0), 1) AS percent_done,
       round(j.rows_done / nullif(extract(epoch FROM j.updated_at - j.started_at), 0)) AS rows_per_second,
       j.started_at, j.updated_at, j.finished_at, j.last_error
  FROM llm_sql.embedding_jobs j
  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = j.pid AND a.backend_start <= j.started_at
 WHERE pg_catalog.has_table_privilege(j.tbl, 'SELECT');
GRANT SELECT ON llm_sql.embedding_progress TO PUBLIC;

-- Columns kept up to date by auto_embed; run_as is the role that called it.
CREATE TABLE llm_sql.auto_embeddings (
    tbl regclass NOT NULL,
    source_column name NOT NULL,
    target_column name NOT NULL,
    model text NOT NULL,
    run_as oid NOT NULL,
    key_columns name[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tbl, target_column)
);
REVOKE ALL ON llm_sql.auto_embeddings FROM PUBLIC;

-- Rows waiting for an embedding, by primary key. Roles see the entries of tables they may read.
CREATE TABLE llm_sql.embedding_queue (
    id bigserial PRIMARY KEY,
    tbl regclass NOT NULL,
    target_column name NOT NULL,
    row_key jsonb NOT NULL,
    version bigint NOT NULL DEFAULT 1,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    attempts int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    UNIQUE (tbl, target_column, row_key)
);
CREATE INDEX embedding_queue_due ON llm_sql.embedding_queue (next_attempt_at);
REVOKE ALL ON llm_sql.embedding_queue FROM PUBLIC;
GRANT SELECT ON llm_sql.embedding_queue TO PUBLIC;
ALTER TABLE llm_sql.embedding_queue ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable_tables ON llm_sql.embedding_queue FOR SELECT
    USING (pg_catalog.has_table_privilege(tbl, 'SELECT'));
SELECT pg_catalog.pg_extension_config_dump('llm_sql.auto_embeddings', '');
SELECT pg_catalog.pg_extension_config_dump('llm_sql.embedding_queue', '');

CREATE FUNCTION llm_sql._enqueue_embedding() RETURNS trigger
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'llm_sql_enqueue_embedding';

CREATE PROCEDURE llm_sql.embed_column(tbl regclass, source_column name, target_column name,
                                      batch_size int DEFAULT NULL, model text DEFAULT NULL)
LANGUAGE plpgsql AS $proc$
DECLARE
    job bigint;
    total bigint;
    use_model text;
    position text := '(0,0)';
    pass_done bigint := 0;
    done bigint := 0;
    batches bigint := 0;
    started timestamptz := clock_timestamp();
    step record;
    err_state text;
    err_message text;
    err_detail text;
    err_hint text;
BEGIN
    IF tbl IS NULL OR source_column IS NULL OR target_column IS NULL THEN
        RAISE EXCEPTION 'embed_column: tbl, source_column and target_column must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT s.job, s.rows_total, s.model INTO job, total, use_model
      FROM llm_sql._embed_column_start(tbl, source_column, target_column, model) AS s;
    COMMIT;
    LOOP
        BEGIN
            SELECT b.embedded, b.next INTO step
              FROM llm_sql._embed_column_batch(job, tbl, source_column, target_column, batch_size,
                                               use_model, position) AS b;
        EXCEPTION WHEN OTHERS THEN
            -- (A cancel is not caught here: it ends the call, and the view shows 'interrupted'.)
            GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT,
                err_detail = PG_EXCEPTION_DETAIL, err_hint = PG_EXCEPTION_HINT;
        END;
        IF err_state IS NOT NULL THEN
            -- Keep the failure visible in embedding_progress, then raise it as it was.
            PERFORM llm_sql._embed_column_failed(job, err_message);
            COMMIT;
            RAISE EXCEPTION USING ERRCODE = err_state, MESSAGE = err_message,
                DETAIL = coalesce(err_detail, ''), HINT = coalesce(err_hint, '');
        END IF;
        COMMIT;
        done := done + step.embedded;
        pass_done := pass_done + step.embedded;
        batches := batches + 1;
        IF batches % 10 = 0 THEN
            RAISE NOTICE 'embed_column: % of % rows embedded (% rows/s)', done, total,
                round(done / greatest(extract(epoch FROM clock_timestamp() - started), 0.001));
        END IF;
        IF step.next IS NULL THEN
            -- End of the table: one more pass catches rows added behind the walk.
            EXIT WHEN pass_done = 0;
            position := '(0,0)';
            pass_done := 0;
        ELSE
            position := step.next;
        END IF;
    END LOOP;
    PERFORM llm_sql._embed_column_finish(job);
    COMMIT;
    RAISE NOTICE 'embed_column: % rows embedded into %.% in % batches', done, tbl, target_column, batches;
END
$proc$;
COMMENT ON PROCEDURE llm_sql.embed_column(regclass, name, name, int, text) IS
    'Fills every row whose target is NULL and whose source has text, committing each batch; resumable';

CREATE FUNCTION llm_sql.auto_embed(tbl regclass, source_column name, target_column name,
                                   model text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE queued bigint;
BEGIN
    IF tbl IS NULL OR source_column IS NULL OR target_column IS NULL THEN
        RAISE EXCEPTION 'auto_embed: tbl, source_column and target_column must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    queued := llm_sql._auto_embed(tbl, source_column, target_column, model);
    RAISE NOTICE 'auto_embed: %.% follows %; % existing rows queued', tbl, target_column,
        source_column, queued;
END
$fn$;
COMMENT ON FUNCTION llm_sql.auto_embed(regclass, name, name, text) IS
    'Keeps a vector column up to date: triggers queue changed rows, the worker embeds them';

CREATE FUNCTION llm_sql.disable_auto_embed(tbl regclass, target_column name) RETURNS void
LANGUAGE sql AS $fn$ SELECT llm_sql._disable_auto_embed(tbl, target_column) $fn$;

CREATE PROCEDURE llm_sql.process_embedding_queue(max_rows int DEFAULT NULL)
LANGUAGE plpgsql AS $proc$
DECLARE
    handled bigint;
    total bigint := 0;
    batch int := current_setting('llm_sql.embedding_batch_size')::int;
BEGIN
    IF max_rows IS NOT NULL AND max_rows < 1 THEN
        RAISE EXCEPTION 'max_rows must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    LOOP
        handled := llm_sql._process_embedding_queue_batch(
            CASE WHEN max_rows IS NULL THEN batch ELSE least(batch, max_rows - total) END::int);
        COMMIT;
        total := total + handled;
        EXIT WHEN handled = 0 OR (max_rows IS NOT NULL AND total >= max_rows);
    END LOOP;
    RAISE NOTICE 'process_embedding_queue: % queue entries handled', total;
END
$proc$;

CREATE FUNCTION llm_sql.semantic_search(tbl regclass, query text, k int DEFAULT 10,
                                        embedding_column name DEFAULT 'embedding')
RETURNS TABLE(data jsonb, distance float8)
LANGUAGE sql AS $fn$ SELECT * FROM llm_sql._semantic_search(tbl, query, k, embedding_column) $fn$;
COMMENT ON FUNCTION llm_sql.semantic_search(regclass, text, int, name) IS
    'The k rows nearest to the query by cosine distance; data is the row as JSON without the vector';

CREATE FUNCTION llm_sql.hybrid_search(tbl regclass, query text, text_column name, k int DEFAULT 10,
                                      embedding_column name DEFAULT 'embedding')
RETURNS TABLE(data jsonb, score float8)
LANGUAGE sql AS $fn$ SELECT * FROM llm_sql._hybrid_search(tbl, query, text_column, k, embedding_column) $fn$;
COMMENT ON FUNCTION llm_sql.hybrid_search(regclass, text, name, int, name) IS
    'Vector and full-text ranks fused by reciprocal rank fusion (k = 60)';
"#,
    name = "embedding_objects",
    requires = [
        "schema_usage",
        "attachment_registry",
        embed_column_start,
        embed_column_batch,
        embed_column_finish,
        embed_column_failed,
        auto_embed,
        disable_auto_embed,
        process_embedding_queue_batch,
        semantic_search,
        hybrid_search
    ],
);
