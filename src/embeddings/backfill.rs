//! `CALL llm_sql.embed_column(...)`: fills a vector column for every row whose target is NULL
//! and whose source has text, one committed batch at a time.
//!
//! Resumable by construction: a batch only writes rows whose target is still NULL and whose
//! source still holds the text that was embedded, and commits; a cancel or a dead model server
//! loses at most the batch in flight, and running the procedure again continues with the rows
//! still NULL. The walk goes through the table in physical order (TID range scans over a
//! window of blocks), so each batch reads only its own rows instead of rescanning the table.
//! A final pass from the start catches rows added behind the walk. The next batch's embeddings
//! are requested before the current batch is written, so the model server and Postgres work
//! at the same time.
//!
//! [`run`] is the procedure (it commits between batches, see `crate::procedure`); progress is
//! kept in `llm_sql.embedding_jobs` (view `llm_sql.embedding_progress`).

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::Oid;
use pgrx::prelude::*;
use pgrx::{PgOid, PgSqlErrorCode};

use std::cell::{Cell, RefCell};
use std::time::Instant;

use super::{vector, Columns, PendingBatch, HAS_TEXT};
use crate::error::{Error, Result};
use crate::plans;
use crate::procedure::Transactions;
use crate::run_as::as_extension_owner;
use crate::subxact::{self, OnSuccess};

const TEXT: PgOid = PgOid::BuiltIn(pg_sys::PgBuiltInOids::TEXTOID);
const INT8: PgOid = PgOid::BuiltIn(pg_sys::PgBuiltInOids::INT8OID);

/// `CALL llm_sql.embed_column(...)`: a batch at a time, each committed, until a pass over the
/// table finds nothing left to embed. A failed batch is recorded in the job (so that
/// `embedding_progress` shows it) before its error is raised; a cancel just ends the call.
/// Either way the error's hint says that the committed batches are kept.
pub fn run(
    table: Oid,
    source: &str,
    target: &str,
    batch_size: Option<i32>,
    model: Option<&str>,
    transactions: &mut Transactions,
) -> Result<()> {
    let batch_size = super::batch_size(batch_size)?;
    let (job, total, model) = start(table, source, target, model)?;
    transactions.commit();
    let started = Instant::now();
    let done = Cell::new(0);
    let (mut position, mut pass_done, mut batches) = ("(0,0)".to_string(), 0, 0);
    // A cancel or statement timeout ends the call between Postgres's own checks: it is raised
    // again with the same hint as any other error.
    subxact::with_hint_on_cancel(
        || resume_hint(done.get()),
        || loop {
            let step = subxact::run(OnSuccess::Keep, || {
                batch(job, table, source, target, batch_size, &model, &position)
            });
            let (embedded, next) = match step {
                Ok(step) => step,
                Err(error) => {
                    failed(job, &error.message)?;
                    transactions.commit();
                    // (Nothing committed yet: the error's own hint says all there is to do.)
                    if done.get() == 0 {
                        return Err(error);
                    }
                    let hint = match &error.hint {
                        Some(hint) => format!("{hint} {}", resume_hint(done.get())),
                        None => resume_hint(done.get()),
                    };
                    return Err(error.with_hint(hint));
                }
            };
            transactions.commit();
            done.set(done.get() + embedded);
            pass_done += embedded;
            batches += 1;
            if batches % 10 == 0 {
                let rate = done.get() as f64 / started.elapsed().as_secs_f64().max(0.001);
                notice!(
                    "embed_column: {} of {total} rows embedded ({rate:.0} rows/s)",
                    done.get()
                );
            }
            match next {
                Some(next) => position = next,
                // End of the table: one more pass catches rows added behind the walk.
                None if pass_done > 0 => {
                    position = "(0,0)".to_string();
                    pass_done = 0;
                }
                None => return Ok(()),
            }
        },
    )?;
    let done = done.get();
    finish(job)?;
    transactions.commit();
    let columns = Columns::resolve(table, Some(source), target)?;
    notice!(
        "embed_column: {done} rows embedded into {}.{} in {batches} batches",
        columns.qualified,
        columns.target_name
    );
    Ok(())
}

/// The hint of an error that ended embed_column: its work is kept.
fn resume_hint(done: i64) -> String {
    format!(
        "{done} rows embedded by this call are committed: CALL llm_sql.embed_column again to \
         continue (llm_sql.embedding_progress shows where it stopped)."
    )
}

/// Checks the call, records the job and returns its id, the number of rows to embed and the
/// model.
fn start(
    table: Oid,
    source: &str,
    target: &str,
    model: Option<&str>,
) -> Result<(i64, i64, String)> {
    PREFETCH.with(|p| p.borrow_mut().take());
    let columns = Columns::resolve(table, Some(source), target)?;
    // The job is recorded as llm_sql's owner: only for a role that may fill the column.
    columns.check_writable(source, "embed_column")?;
    let model = super::model_for(&columns, model, "CALL llm_sql.embed_column")?;
    let total = Spi::get_one::<i64>(&format!(
        "SELECT count(*) FROM {} WHERE {} IS NULL AND {src}::text {HAS_TEXT}",
        columns.qualified,
        columns.target,
        src = columns.source,
    ))?
    .unwrap_or(0);
    let args = || {
        [
            table.into(),
            source.into(),
            target.into(),
            model.as_str().into(),
            total.into(),
        ]
    };
    let job = as_extension_owner(|| {
        // Resuming an unfinished run of the same column and model: its counts go on.
        let resumed = Spi::get_one_with_args::<i64>(
            "WITH resumed AS (
                 UPDATE llm_sql.embedding_jobs
                    SET pid = pg_catalog.pg_backend_pid(), rows_total = rows_done + $5,
                        rows_done_at_resume = rows_done, resumed_at = pg_catalog.now(),
                        updated_at = pg_catalog.now(), last_error = NULL
                  WHERE tbl = $1 AND source_column = $2 AND target_column = $3 AND model = $4
                    AND finished_at IS NULL
                  RETURNING id)
             SELECT (SELECT id FROM resumed)",
            &args(),
        )?;
        if let Some(job) = resumed {
            return Ok(job);
        }
        Ok(Spi::get_one_with_args::<i64>(
            "INSERT INTO llm_sql.embedding_jobs AS j
                    (tbl, source_column, target_column, model, rows_total, pid)
             VALUES ($1, $2, $3, $4, $5, pg_catalog.pg_backend_pid())
             ON CONFLICT (tbl, target_column) DO UPDATE
                SET source_column = excluded.source_column, model = excluded.model,
                    rows_total = excluded.rows_total, rows_done = 0, rows_done_at_resume = 0,
                    pid = excluded.pid, started_at = pg_catalog.now(),
                    resumed_at = pg_catalog.now(), updated_at = pg_catalog.now(),
                    finished_at = NULL, last_error = NULL
             RETURNING j.id",
            &args(),
        )?
        .unwrap_or(0))
    })?;
    Ok((job, total, model))
}

/// A batch whose rows were read, and whose embeddings were requested, while the batch before
/// it was being written: the model server works while Postgres writes. It outlives the
/// transaction that read it; that is safe because `write` only touches rows whose target is
/// still NULL and whose source still holds the text that was embedded.
struct Prefetch {
    key: (i64, String, usize, String),
    ids: Vec<String>,
    next: Option<String>,
    embeddings: PendingBatch,
}

thread_local! {
    static PREFETCH: RefCell<Option<Prefetch>> = const { RefCell::new(None) };
}

/// One batch after position `after` (a tid as text). Returns the rows written and where to go
/// on, or None at the end of the table.
fn batch(
    job: i64,
    table: Oid,
    source: &str,
    target: &str,
    batch_size: usize,
    model: &str,
    after: &str,
) -> Result<(i64, Option<String>)> {
    let columns = Columns::resolve(table, Some(source), target)?;
    let key = (job, after.to_string(), batch_size, model.to_string());
    let current = match PREFETCH.with(|p| p.borrow_mut().take()) {
        Some(prefetch) if prefetch.key == key => prefetch,
        _ => request(&columns, key)?,
    };
    let (texts, vectors) = current.embeddings.wait(&columns)?;
    if let Some(next) = &current.next {
        let upcoming = request(&columns, (job, next.clone(), batch_size, model.to_string()))?;
        PREFETCH.with(|p| *p.borrow_mut() = Some(upcoming));
    }
    let written = write(&columns, &current.ids, &texts, &vectors)?;
    // A crash loses at most the last batches, which the next run embeds again: no reason to
    // wait for each batch's WAL flush. (Set as the caller: the owner's settings are undone.)
    Spi::connect_mut(|client| {
        let relaxed = plans::kept(
            client,
            "SELECT pg_catalog.set_config('synchronous_commit', 'off', true)",
            &[],
            false,
        )?;
        client.select(&*relaxed, None, &[]).map(drop)
    })?;
    as_extension_owner(|| {
        Ok(Spi::connect_mut(|client| {
            let progress = plans::kept(
                client,
                "UPDATE llm_sql.embedding_jobs
                    SET rows_done = rows_done + $2, updated_at = pg_catalog.now()
                  WHERE id = $1",
                &[INT8, INT8],
                true,
            )?;
            client.update(&*progress, None, &[job.into(), written.into()])?;
            Ok::<_, pgrx::spi::Error>(())
        })?)
    })?;
    Ok((written, current.next))
}

/// Reads the batch `key` names and requests its embeddings.
fn request(columns: &Columns, key: (i64, String, usize, String)) -> Result<Prefetch> {
    let (_, after, batch_size, model) = &key;
    let (rows, next) = next_rows(columns, *batch_size, after)?;
    let (ids, texts): (Vec<String>, Vec<Option<String>>) = rows.into_iter().unzip();
    let embeddings = PendingBatch::start(texts, model)?;
    Ok(Prefetch {
        key,
        ids,
        next,
        embeddings,
    })
}

/// Marks the job finished.
fn finish(job: i64) -> Result<()> {
    as_extension_owner(|| {
        Spi::run_with_args(
            "UPDATE llm_sql.embedding_jobs SET finished_at = pg_catalog.now(),
                    updated_at = pg_catalog.now() WHERE id = $1",
            &[job.into()],
        )?;
        Ok(())
    })
}

/// Records why the job stopped.
fn failed(job: i64, error: &str) -> Result<()> {
    as_extension_owner(|| {
        Spi::run_with_args(
            "UPDATE llm_sql.embedding_jobs SET last_error = $2, updated_at = pg_catalog.now()
              WHERE id = $1",
            &[job.into(), error.into()],
        )?;
        Ok(())
    })
}

/// Rows to embed: (ctid as text, source text).
type Rows = Vec<(String, Option<String>)>;

/// Up to `batch_size` rows to embed after `after`, in physical order, and the position to
/// continue from (None when the walk reached the end of the table).
fn next_rows(columns: &Columns, batch_size: usize, after: &str) -> Result<(Rows, Option<String>)> {
    let (blocks, rows_per_block) = table_size(columns.table)?;
    let first_block: i64 = after
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .next()
        .and_then(|b| b.parse().ok())
        .unwrap_or(0);
    // The output column has its own name so that ORDER BY sorts by tid, not by text.
    let sql = format!(
        "SELECT ctid::text AS row_id, {src}::text FROM {tbl}
          WHERE ctid > $1::tid AND ctid < $2::tid AND {tgt} IS NULL AND {src}::text {HAS_TEXT}
          ORDER BY ctid LIMIT $3",
        src = columns.source,
        tgt = columns.target,
        tbl = columns.qualified,
    );
    // A window of blocks expected to hold a batch, doubled until it does or reaches the end.
    let mut span = ((batch_size as f64 / rows_per_block).ceil() as i64).max(1) * 2;
    loop {
        let end = first_block.saturating_add(span).saturating_add(1);
        let at_end = end > blocks;
        let rows = Spi::connect(|client| {
            let plan = plans::kept(client, &sql, &[TEXT, TEXT, INT8], false)?;
            let mut rows = Vec::new();
            for row in client.select(
                &*plan,
                None,
                &[
                    after.into(),
                    format!("({end},0)").into(),
                    (batch_size as i64).into(),
                ],
            )? {
                rows.push((
                    row.get::<String>(1)?.unwrap_or_default(),
                    row.get::<String>(2)?,
                ));
            }
            Ok::<_, pgrx::spi::Error>(rows)
        })?;
        if rows.len() >= batch_size {
            let last = rows.last().map(|r| r.0.clone());
            return Ok((rows, last));
        }
        if at_end {
            return Ok((rows, None));
        }
        span = span.saturating_mul(2);
    }
}

/// The table's size in blocks, and its rows per block as of the last VACUUM or ANALYZE (50
/// when unknown).
fn table_size(table: Oid) -> Result<(i64, f64)> {
    // SAFETY: opens the relation (or gets NULL if it is gone) to read its size and statistics;
    // the lock is kept until the end of the transaction, like any scan's.
    unsafe {
        let relation = pg_sys::try_relation_open(table, pg_sys::AccessShareLock as i32);
        if relation.is_null() {
            return Err(Error::new(
                PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                format!("relation with OID {} does not exist", table.to_u32()),
            ));
        }
        let blocks =
            pg_sys::RelationGetNumberOfBlocksInFork(relation, pg_sys::ForkNumber::MAIN_FORKNUM);
        let (pages, tuples) = (
            (*(*relation).rd_rel).relpages,
            (*(*relation).rd_rel).reltuples,
        );
        pg_sys::relation_close(relation, pg_sys::NoLock as i32);
        let per_block = match pages > 0 && tuples > 0.0 {
            true => f64::from(tuples) / f64::from(pages),
            false => 50.0,
        };
        Ok((i64::from(blocks), per_block.max(1.0)))
    }
}

/// Stores the vectors of rows `ids` whose target is still NULL and whose source still holds
/// the embedded text. Returns how many rows were written.
fn write(
    columns: &Columns,
    ids: &[String],
    texts: &[Option<String>],
    vectors: &[Option<Vec<f32>>],
) -> Result<i64> {
    let keep: Vec<usize> = (0..ids.len()).filter(|&i| vectors[i].is_some()).collect();
    if keep.is_empty() {
        return Ok(0);
    }
    let ids: Vec<String> = keep.iter().map(|&i| ids[i].clone()).collect();
    let texts: Vec<Option<String>> = keep.iter().map(|&i| texts[i].clone()).collect();
    let vectors: Vec<Option<&[f32]>> = keep.iter().map(|&i| vectors[i].as_deref()).collect();
    let sql = format!(
        "UPDATE {tbl} AS t SET {tgt} = u.e::{target_type}
           FROM ROWS FROM (pg_catalog.unnest($1::text[]::tid[]), pg_catalog.unnest($2::text[]),
                          pg_catalog.unnest($3)) AS u(id, src, e)
          WHERE t.ctid = u.id AND t.{tgt} IS NULL AND t.{src}::text = u.src",
        tbl = columns.qualified,
        tgt = columns.target,
        target_type = columns.target_type,
        src = columns.source,
    );
    store(&sql, columns, ids.into(), texts.into(), &vectors)
}

/// Runs an UPDATE whose $1 and $2 are `keys` and `texts` and whose $3 is the vectors.
pub fn store(
    sql: &str,
    columns: &Columns,
    keys: DatumWithOid,
    texts: DatumWithOid,
    vectors: &[Option<&[f32]>],
) -> Result<i64> {
    // SAFETY: the array type of the column's vector type, and an array built for it.
    let vectors = unsafe {
        let array_type = pg_sys::get_array_type(columns.vector_type);
        DatumWithOid::new(
            vector::array_datum(vectors, columns.vector_type),
            array_type,
        )
    };
    let sql = format!("{sql} RETURNING 1");
    let types = [keys.oid(), texts.oid(), vectors.oid()].map(PgOid::from);
    Ok(Spi::connect_mut(|client| {
        let plan = plans::kept(client, &sql, &types, true)?;
        client
            .update(&*plan, None, &[keys, texts, vectors])
            .map(|rows| rows.len() as i64)
    })?)
}
