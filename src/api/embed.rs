//! SQL surface of embeddings into pgvector columns: embed_column (backfill), auto_embed and
//! its queue, and the searches. Every one is a C function of this library: no SQL-language
//! wrapper whose names the caller's search_path could redirect, and no internal function for
//! PUBLIC to call. The two procedures commit between batches (`crate::procedure`).

use std::ffi::CStr;

use pgrx::datum::JsonB;
use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;

use crate::embeddings::{backfill, queue, search};
use crate::error::required;
use crate::error::{Error, OrReport, Result};
use crate::procedure::Transactions;

/// A `name` argument as text; NULL refused (22004) like any required argument.
fn name_arg<'a>(value: Option<&'a CStr>, argument: &str) -> Result<&'a str> {
    required(value, argument)?
        .to_str()
        .map_err(|_| Error::invalid_parameter(format!("{argument} is not valid UTF-8")))
}

/// `CALL llm_sql.embed_column(tbl regclass, source_column name, target_column name,
/// batch_size int DEFAULT NULL, model text DEFAULT NULL)`
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn llm_sql_embed_column(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: declared in SQL with these argument types (regclass is an oid, name a C string).
    let (tbl, source, target, batch_size, model) = unsafe {
        (
            pgrx::fcinfo::pg_getarg::<Oid>(fcinfo, 0),
            pgrx::fcinfo::pg_getarg::<&CStr>(fcinfo, 1),
            pgrx::fcinfo::pg_getarg::<&CStr>(fcinfo, 2),
            pgrx::fcinfo::pg_getarg::<i32>(fcinfo, 3),
            pgrx::fcinfo::pg_getarg::<String>(fcinfo, 4),
        )
    };
    (|| {
        let (tbl, source, target) = (
            required(tbl, "tbl")?,
            name_arg(source, "source_column")?,
            name_arg(target, "target_column")?,
        );
        // SAFETY: this is a procedure call.
        let mut transactions = unsafe { Transactions::begin(fcinfo) };
        transactions.require_commits("embed_column")?;
        backfill::run(
            tbl,
            source,
            target,
            batch_size,
            model.as_deref(),
            &mut transactions,
        )
    })()
    .or_report();
    pg_sys::Datum::from(0)
}

finfo_v1!(pg_finfo_llm_sql_embed_column);

/// `CALL llm_sql.process_embedding_queue(max_rows int DEFAULT NULL)`
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn llm_sql_process_embedding_queue(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: declared in SQL as (int).
    let max_rows = unsafe { pgrx::fcinfo::pg_getarg::<i32>(fcinfo, 0) };
    // SAFETY: this is a procedure call. Inside a transaction block it drains the queue in that
    // transaction.
    let mut transactions = unsafe { Transactions::begin(fcinfo) };
    queue::drain(max_rows, &mut transactions).or_report();
    pg_sys::Datum::from(0)
}

finfo_v1!(pg_finfo_llm_sql_process_embedding_queue);

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION llm_sql.auto_embed(tbl regclass, source_column name, target_column name,
                                   model text DEFAULT NULL) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION llm_sql.auto_embed(regclass, name, name, text) IS
    'Keeps a vector column up to date: triggers queue changed rows, the worker embeds them';
"#
)]
fn start_auto_embed(
    tbl: Option<Oid>,
    source_column: Option<&CStr>,
    target_column: Option<&CStr>,
    model: Option<&str>,
) {
    (|| {
        let (tbl, source, target) = (
            required(tbl, "tbl")?,
            name_arg(source_column, "source_column")?,
            name_arg(target_column, "target_column")?,
        );
        let queued = queue::enable(tbl, source, target, model)?;
        notice!("auto_embed: {target} follows {source}; {queued} existing rows queued");
        crate::worker::warn_if_absent()?;
        Ok(())
    })()
    .or_report()
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION llm_sql.disable_auto_embed(tbl regclass, target_column name) RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION llm_sql.disable_auto_embed(regclass, name) IS
    'Stops auto_embed for a column: drops its triggers, its setting and its queued rows';
"#
)]
fn stop_auto_embed(tbl: Option<Oid>, target_column: Option<&CStr>) {
    (|| {
        queue::disable(
            required(tbl, "tbl")?,
            name_arg(target_column, "target_column")?,
        )
    })()
    .or_report()
}

/// The searches' optional arguments: a jsonb filter object and the columns to return.
fn search_shape<'a>(
    filter: &'a Option<JsonB>,
    columns: &'a Option<Vec<String>>,
) -> search::Shape<'a> {
    search::Shape {
        filter: filter.as_ref().map(|f| &f.0),
        columns: columns.as_deref(),
    }
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION llm_sql.semantic_search(tbl regclass, query text, k int DEFAULT 10,
                                        embedding_column name DEFAULT 'embedding',
                                        filter jsonb DEFAULT NULL, columns text[] DEFAULT NULL)
    RETURNS TABLE(data jsonb, distance float8)
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION llm_sql.semantic_search(regclass, text, int, name, jsonb, text[]) IS
    'The k rows nearest to the query by cosine distance among those matching filter; data is the row (or columns) as JSON';
"#
)]
fn semantic_search_filtered(
    tbl: Option<Oid>,
    query: Option<&str>,
    k: Option<i32>,
    embedding_column: Option<&CStr>,
    filter: Option<JsonB>,
    columns: Option<Vec<String>>,
) -> TableIterator<'static, (name!(data, JsonB), name!(distance, f64))> {
    let found = (|| {
        // (NULL query: no rows, as when the function was STRICT.)
        let Some(query) = query else {
            return Ok(Vec::new());
        };
        let (tbl, k) = (required(tbl, "tbl")?, required(k, "k")?);
        let column = name_arg(embedding_column, "embedding_column")?;
        search::semantic(tbl, query, k, column, &search_shape(&filter, &columns))
    })();
    TableIterator::new(found.or_report())
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION llm_sql.hybrid_search(tbl regclass, query text, text_column name, k int DEFAULT 10,
                                      embedding_column name DEFAULT 'embedding',
                                      filter jsonb DEFAULT NULL, columns text[] DEFAULT NULL)
    RETURNS TABLE(data jsonb, score float8)
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION llm_sql.hybrid_search(regclass, text, name, int, name, jsonb, text[]) IS
    'Vector and full-text ranks fused by reciprocal rank fusion (k = 60), among rows matching filter';
"#
)]
fn hybrid_search_filtered(
    tbl: Option<Oid>,
    query: Option<&str>,
    text_column: Option<&CStr>,
    k: Option<i32>,
    embedding_column: Option<&CStr>,
    filter: Option<JsonB>,
    columns: Option<Vec<String>>,
) -> TableIterator<'static, (name!(data, JsonB), name!(score, f64))> {
    let found = (|| {
        let Some(query) = query else {
            return Ok(Vec::new());
        };
        let (tbl, k) = (required(tbl, "tbl")?, required(k, "k")?);
        let text = name_arg(text_column, "text_column")?;
        let column = name_arg(embedding_column, "embedding_column")?;
        search::hybrid(
            tbl,
            query,
            text,
            k,
            column,
            &search_shape(&filter, &columns),
        )
    })();
    TableIterator::new(found.or_report())
}

/// `llm_sql_internal.enqueue_embedding()`, the trigger function of auto_embed.
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

/// `llm_sql_internal.forget_dropped()`, the function of the `sql_drop` event trigger.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn llm_sql_forget_dropped(
    _fcinfo: pgrx::pg_sys::FunctionCallInfo,
) -> pgrx::pg_sys::Datum {
    queue::forget_dropped().or_report();
    pgrx::pg_sys::Datum::from(0)
}

finfo_v1!(pg_finfo_llm_sql_forget_dropped);

pgrx::extension_sql!(
    r#"
-- Progress of embed_column, one row per column, updated with every committed batch. A call
-- that resumes an unfinished run with the same model continues its counts; resumed_at and
-- rows_done_at_resume give the current call's rate.
CREATE TABLE llm_sql.embedding_jobs (
    id bigserial PRIMARY KEY,
    tbl regclass NOT NULL,
    source_column name NOT NULL,
    target_column name NOT NULL,
    model text NOT NULL,
    rows_total bigint NOT NULL DEFAULT 0,
    rows_done bigint NOT NULL DEFAULT 0,
    pid int,
    started_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    finished_at timestamptz,
    last_error text,
    resumed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    rows_done_at_resume bigint NOT NULL DEFAULT 0,
    UNIQUE (tbl, target_column)
);
REVOKE ALL ON llm_sql.embedding_jobs FROM PUBLIC;
COMMENT ON TABLE llm_sql.embedding_jobs IS
    'The model and progress of embed_column per column (read it through llm_sql.embedding_progress)';
-- (Kept by pg_dump: the model a column was filled with is what its searches embed with.)
SELECT pg_catalog.pg_extension_config_dump('llm_sql.embedding_jobs', '');
SELECT pg_catalog.pg_extension_config_dump('llm_sql.embedding_jobs_id_seq', '');

-- (Every operator below has operands of exactly the types of a pg_catalog operator, and every
-- function is qualified: nothing another role created in a schema on the search_path of
-- CREATE EXTENSION can be bound into the view.)
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

-- Columns kept up to date by auto_embed; run_as is the role that called it.
CREATE TABLE llm_sql.auto_embeddings (
    tbl regclass NOT NULL,
    source_column name NOT NULL,
    target_column name NOT NULL,
    model text NOT NULL,
    run_as oid NOT NULL,
    key_columns name[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
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
    enqueued_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    attempts int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
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
SELECT pg_catalog.pg_extension_config_dump('llm_sql.embedding_queue_id_seq', '');
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

CREATE FUNCTION llm_sql_internal.enqueue_embedding() RETURNS trigger
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'llm_sql_enqueue_embedding';
COMMENT ON FUNCTION llm_sql_internal.enqueue_embedding() IS
    'Trigger of auto_embed: queues a changed row for embedding (called by Postgres)';
-- Only ever run by the triggers auto_embed creates (as llm_sql's owner).
REVOKE EXECUTE ON FUNCTION llm_sql_internal.enqueue_embedding() FROM PUBLIC;

CREATE PROCEDURE llm_sql.embed_column(tbl regclass, source_column name, target_column name,
                                      batch_size int DEFAULT NULL, model text DEFAULT NULL)
    LANGUAGE c AS 'MODULE_PATHNAME', 'llm_sql_embed_column';
COMMENT ON PROCEDURE llm_sql.embed_column(regclass, name, name, int, text) IS
    'Fills every row whose target is NULL and whose source has text, committing each batch; resumable';

CREATE PROCEDURE llm_sql.process_embedding_queue(max_rows int DEFAULT NULL)
    LANGUAGE c AS 'MODULE_PATHNAME', 'llm_sql_process_embedding_queue';
COMMENT ON PROCEDURE llm_sql.process_embedding_queue(int) IS
    'Embeds the queued rows of auto-embedded columns now, committing each batch';
"#,
    name = "embedding_objects",
    requires = ["schema_usage", "attachment_registry"],
);
