//! Auto-embedding: triggers that only enqueue, and the drain that embeds.
//!
//! `auto_embed` records the column in `llm_sql.auto_embeddings` and creates two row triggers:
//! after INSERT (source not NULL) and after UPDATE OF source when the value actually changed.
//! The trigger writes the row's primary key into `llm_sql.embedding_queue` (one entry per row:
//! a second change bumps the entry's version), so an INSERT never waits for a model.
//!
//! The drain (background worker, or `CALL llm_sql.process_embedding_queue()`) takes due entries
//! of one column, reads each row's *current* source text, embeds, and writes the vector only if
//! the source still holds that text; then removes the entries whose version did not move.
//! Reading and writing the table happen as the role that called `auto_embed`, so its privileges
//! and row-level security apply. A failure (server down, privilege lost) is written into the
//! entries with exponential backoff and the drain goes on with other entries.

use pgrx::datum::JsonB;
use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use serde_json::Value;

use super::{backfill, Columns, HAS_TEXT};
use crate::error::{Error, Result};
use crate::procedure::Transactions;
use crate::quote::ident;
use crate::quote::pg_literal as literal;
use crate::run_as::as_extension_owner;
use crate::run_as::{current_user, run_as};
use crate::subxact::{self, OnSuccess};

/// Sets up auto-embedding of `source` into `target`, and queues the rows that have no
/// embedding yet. Returns how many rows were queued.
pub fn enable(table: Oid, source: &str, target: &str, model: Option<&str>) -> Result<i64> {
    let columns = Columns::resolve(table, Some(source), target)?;
    let keys = primary_key(&columns)?;
    columns.check_writable(source, "auto_embed").map_err(|e| {
        e.with_detail("The embedding worker writes as the role that calls auto_embed.")
    })?;
    let model = super::model_for(&columns, model, "SELECT llm_sql.auto_embed(…)")?;
    // The triggers are created as llm_sql's owner (their function is not executable by
    // PUBLIC), so the caller's own right to create them is checked here.
    let may_trigger = Spi::get_one_with_args::<bool>(
        "SELECT pg_catalog.has_table_privilege($1, 'TRIGGER')",
        &[table.into()],
    )?;
    if may_trigger != Some(true) {
        return Err(Error::permission_denied(format!(
            "auto_embed needs the TRIGGER privilege on {}",
            columns.qualified
        )));
    }
    let attnum = columns.target_attnum;
    let mut args = vec![literal(target)?];
    args.extend(keys.iter().map(|(_, attnum, _)| format!("'{attnum}'")));
    let args = args.join(", ");
    let (tbl, src) = (&columns.qualified, &columns.source);
    // The source is compared as the text that is embedded: no operator of the column's own
    // type is involved.
    as_extension_owner(|| {
        Spi::run(&format!(
            "CREATE OR REPLACE TRIGGER llm_sql_embed_ins_{attnum} AFTER INSERT ON {tbl}
               FOR EACH ROW WHEN (NEW.{src} IS NOT NULL)
               EXECUTE FUNCTION llm_sql_internal.enqueue_embedding({args})"
        ))?;
        Spi::run(&format!(
            "CREATE OR REPLACE TRIGGER llm_sql_embed_upd_{attnum} AFTER UPDATE OF {src} ON {tbl}
               FOR EACH ROW WHEN (OLD.{src}::pg_catalog.text IS DISTINCT FROM NEW.{src}::pg_catalog.text)
               EXECUTE FUNCTION llm_sql_internal.enqueue_embedding({args})"
        ))?;
        Ok(())
    })?;
    let key_names: Vec<String> = keys.iter().map(|(name, _, _)| name.clone()).collect();
    // The rows that need an embedding now, read as the caller.
    let key_list: Vec<String> = keys
        .iter()
        .map(|(name, _, _)| format!("{}::text", ident(name)))
        .collect();
    let pending = Spi::get_one::<Vec<JsonB>>(&format!(
        "SELECT coalesce(array_agg(pg_catalog.jsonb_build_array({})), '{{}}') FROM {tbl}
          WHERE {} IS NULL AND {src}::text {HAS_TEXT}",
        key_list.join(", "),
        columns.target,
    ))?
    .unwrap_or_default();
    let queued = pending.len() as i64;
    let user = current_user();
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO llm_sql.auto_embeddings AS c
                    (tbl, source_column, target_column, model, run_as, key_columns)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tbl, target_column) DO UPDATE
                SET source_column = excluded.source_column, model = excluded.model,
                    run_as = excluded.run_as, key_columns = excluded.key_columns",
            &[
                table.into(),
                source.into(),
                target.into(),
                model.as_str().into(),
                user.into(),
                key_names.into(),
            ],
        )?;
        Spi::run_with_args(
            "INSERT INTO llm_sql.embedding_queue AS q (tbl, target_column, row_key)
             SELECT $1, $2, k FROM pg_catalog.unnest($3::jsonb[]) AS k
             ON CONFLICT (tbl, target_column, row_key) DO NOTHING",
            &[table.into(), target.into(), pending.into()],
        )?;
        Ok(())
    })?;
    Ok(queued)
}

/// Stops auto-embedding of `target`: drops the triggers, the setting and the queued entries.
/// The table's owner (or a member of it) and the role that set it up may.
pub fn disable(table: Oid, target: &str) -> Result<()> {
    let columns = Columns::resolve(table, None, target)?;
    let configured_by = as_extension_owner(|| {
        Ok(Spi::get_one_with_args::<Oid>(
            "SELECT (SELECT run_as FROM llm_sql.auto_embeddings
                      WHERE tbl = $1 AND target_column = $2)",
            &[table.into(), target.into()],
        )?)
    })?;
    let Some(configured_by) = configured_by else {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!(
                "{}.{} is not auto-embedded",
                columns.qualified, columns.target
            ),
        ));
    };
    let user = current_user();
    // SAFETY: catalog lookups on the backend thread.
    let allowed = unsafe {
        pg_sys::has_privs_of_role(user, configured_by)
            || pg_sys::object_ownercheck(pg_sys::RelationRelationId, table, user)
    };
    if !allowed {
        return Err(Error::permission_denied(format!(
            "must be owner of {} or the role that set up its auto-embedding to stop it",
            columns.qualified
        )));
    }
    let attnum = columns.target_attnum;
    as_extension_owner(|| {
        drop_triggers(&columns.qualified, attnum.into())?;
        Spi::run_with_args(
            "DELETE FROM llm_sql.auto_embeddings WHERE tbl = $1 AND target_column = $2",
            &[table.into(), target.into()],
        )?;
        Spi::run_with_args(
            "DELETE FROM llm_sql.embedding_queue WHERE tbl = $1 AND target_column = $2",
            &[table.into(), target.into()],
        )?;
        Ok(())
    })
}

/// The primary key columns: (name, attnum, type).
fn primary_key(columns: &Columns) -> Result<Vec<(String, i16, String)>> {
    let keys = Spi::connect(|client| {
        let mut keys = Vec::new();
        for row in client.select(
            "SELECT a.attname::text, a.attnum, pg_catalog.format_type(a.atttypid, a.atttypmod)
               FROM pg_catalog.pg_index i
               CROSS JOIN LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord",
            None,
            &[columns.table.into()],
        )? {
            keys.push((
                row.get::<String>(1)?.unwrap_or_default(),
                row.get::<i16>(2)?.unwrap_or(0),
                row.get::<String>(3)?.unwrap_or_default(),
            ));
        }
        Ok::<_, pgrx::spi::Error>(keys)
    })?;
    if keys.is_empty() {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("auto_embed needs a primary key on {}", columns.qualified),
        )
        .with_hint("The queue names rows by primary key. Add one, or fill the column with CALL llm_sql.embed_column(...)."));
    }
    Ok(keys)
}

/// The trigger (`llm_sql_internal.enqueue_embedding`): queues the row (NEW) for embedding. Arguments:
/// target column, then the attribute numbers of the primary key.
///
/// # Safety
/// `fcinfo` must be the call info of a trigger call.
pub unsafe fn enqueue_from_trigger(fcinfo: pg_sys::FunctionCallInfo) -> Result<()> {
    let not_trigger =
        || Error::internal("llm_sql_internal.enqueue_embedding() is a trigger function");
    // SAFETY: the fields Postgres fills for a trigger call; checked for the node tag first.
    unsafe {
        let context = (*fcinfo).context;
        if context.is_null() || (*context).type_ != pg_sys::NodeTag::T_TriggerData {
            return Err(not_trigger());
        }
        let data = context as *mut pg_sys::TriggerData;
        let event = (*data).tg_event;
        let tuple = if event & pg_sys::TRIGGER_EVENT_OPMASK == pg_sys::TRIGGER_EVENT_UPDATE {
            (*data).tg_newtuple
        } else {
            (*data).tg_trigtuple
        };
        let relation = (*data).tg_relation;
        let trigger = (*data).tg_trigger;
        let nargs = (*trigger).tgnargs as usize;
        if nargs < 2 || tuple.is_null() {
            return Err(not_trigger());
        }
        let args: Vec<String> = (0..nargs)
            .map(|i| {
                std::ffi::CStr::from_ptr(*(*trigger).tgargs.add(i))
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let mut key = Vec::with_capacity(nargs - 1);
        for attnum in &args[1..] {
            let attnum: i32 = attnum.parse().map_err(|_| not_trigger())?;
            let value = pg_sys::SPI_getvalue(tuple, (*relation).rd_att, attnum);
            if value.is_null() {
                key.push(Value::Null);
            } else {
                key.push(Value::String(
                    std::ffi::CStr::from_ptr(value)
                        .to_string_lossy()
                        .into_owned(),
                ));
                pg_sys::pfree(value.cast());
            }
        }
        enqueue((*relation).rd_id, &args[0], Value::Array(key))
    }
}

fn enqueue(table: Oid, target: &str, key: Value) -> Result<()> {
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO llm_sql.embedding_queue AS q (tbl, target_column, row_key)
             VALUES ($1, $2, $3)
             ON CONFLICT (tbl, target_column, row_key) DO UPDATE
                SET version = q.version + 1, enqueued_at = pg_catalog.now(), attempts = 0,
                    next_attempt_at = pg_catalog.now(), last_error = NULL",
            &[table.into(), target.into(), JsonB(key).into()],
        )?;
        Ok(())
    })
}

/// Drops the two triggers `enable` made for the target column `attnum` of `qualified`.
fn drop_triggers(qualified: &str, attnum: i32) -> Result<()> {
    for kind in ["ins", "upd"] {
        Spi::run(&format!(
            "DROP TRIGGER IF EXISTS llm_sql_embed_{kind}_{attnum} ON {qualified}"
        ))?;
    }
    Ok(())
}

/// Forgets what llm_sql recorded for dropped tables and columns (called by the `sql_drop`
/// event trigger, as the role that dropped them): their auto-embedding, queued rows and
/// embedding jobs. The triggers go with the table or the source column (they depend on it); a
/// dropped target column's triggers are dropped here.
pub fn forget_dropped() -> Result<()> {
    // As llm_sql's owner, on its pinned search_path: the event trigger runs for any role's
    // DROP (a superuser's too), so none of its SQL may resolve names in that role's schemas.
    // (Nothing is left to forget while DROP EXTENSION llm_sql drops llm_sql's own tables.)
    crate::run_as::as_owner_if_installed(|| {
        let ours = Spi::get_one::<bool>(
            "SELECT pg_catalog.to_regclass('llm_sql.auto_embeddings') IS NOT NULL
                AND pg_catalog.to_regclass('llm_sql.embedding_jobs') IS NOT NULL",
        )?;
        match ours {
            Some(true) => forget_dropped_objects(),
            _ => Ok(()),
        }
    })
    .map(|_| ())
}

fn forget_dropped_objects() -> Result<()> {
    // (table, column number, column name): 0 and NULL for a whole table.
    let dropped = Spi::connect(|client| {
        let mut dropped: Vec<(Oid, i32, Option<String>)> = Vec::new();
        for row in client.select(
            "SELECT objid, objsubid, CASE WHEN objsubid > 0 THEN address_names[3] END
               FROM pg_catalog.pg_event_trigger_dropped_objects()
              WHERE classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                AND object_type IN ('table', 'table column')",
            None,
            &[],
        )? {
            dropped.push((
                row.get::<Oid>(1)?.unwrap_or(Oid::INVALID),
                row.get::<i32>(2)?.unwrap_or(0),
                row.get::<String>(3)?,
            ));
        }
        Ok::<_, pgrx::spi::Error>(dropped)
    })?;
    if dropped.is_empty() {
        return Ok(());
    }
    let tables: Vec<Oid> = dropped.iter().map(|(t, _, _)| *t).collect();
    let columns: Vec<Option<String>> = dropped.iter().map(|(_, _, c)| c.clone()).collect();
    for (table, attnum, column) in &dropped {
        let auto_embedded = column.is_some()
            && Spi::get_one_with_args::<bool>(
                "SELECT EXISTS (SELECT 1 FROM llm_sql.auto_embeddings
                                 WHERE tbl = $1 AND target_column = $2)",
                &[(*table).into(), column.clone().into()],
            )? == Some(true);
        if auto_embedded {
            let qualified = Spi::get_one_with_args::<String>(
                "SELECT $1::pg_catalog.regclass::pg_catalog.text",
                &[(*table).into()],
            )?
            .unwrap_or_default();
            drop_triggers(&qualified, *attnum)?;
        }
    }
    // A NULL column stands for the whole table; a dropped source column ends
    // auto-embedding of its target too.
    for forget in [
        "DELETE FROM llm_sql.embedding_queue q USING llm_sql.auto_embeddings c,
                ROWS FROM (pg_catalog.unnest($1::oid[]), pg_catalog.unnest($2::name[])) AS d(tbl, col)
          WHERE c.tbl::oid = d.tbl AND q.tbl::oid = d.tbl AND q.target_column = c.target_column
            AND (d.col IS NULL OR d.col = c.target_column OR d.col = c.source_column)",
        "DELETE FROM llm_sql.auto_embeddings c
          USING ROWS FROM (pg_catalog.unnest($1::oid[]), pg_catalog.unnest($2::name[])) AS d(tbl, col)
          WHERE c.tbl::oid = d.tbl
            AND (d.col IS NULL OR d.col = c.target_column OR d.col = c.source_column)",
        "DELETE FROM llm_sql.embedding_queue q
          USING ROWS FROM (pg_catalog.unnest($1::oid[]), pg_catalog.unnest($2::name[])) AS d(tbl, col)
          WHERE q.tbl::oid = d.tbl AND (d.col IS NULL OR d.col = q.target_column)",
        "DELETE FROM llm_sql.embedding_jobs j
          USING ROWS FROM (pg_catalog.unnest($1::oid[]), pg_catalog.unnest($2::name[])) AS d(tbl, col)
          WHERE j.tbl::oid = d.tbl AND (d.col IS NULL OR d.col = j.target_column)",
    ] {
        Spi::run_with_args(forget, &[tables.clone().into(), columns.clone().into()])?;
    }
    Ok(())
}

/// One auto-embedded column and the queue entries taken for it.
struct Work {
    table: Oid,
    source: String,
    target: String,
    model: String,
    run_as: Oid,
    key_columns: Vec<String>,
    ids: Vec<i64>,
    versions: Vec<i64>,
    keys: Vec<JsonB>,
}

/// `CALL llm_sql.process_embedding_queue(max_rows)`: batches of `llm_sql.embedding_batch_size`
/// entries, each committed, until the queue has nothing due (or `max_rows` were handled).
/// Superusers drain every column, other roles the columns set up by roles they belong to.
pub fn drain(max_rows: Option<i32>, transactions: &mut Transactions) -> Result<()> {
    if max_rows.is_some_and(|m| m < 1) {
        return Err(Error::invalid_parameter("max_rows must be at least 1"));
    }
    let batch = i64::from(crate::settings::EMBEDDING_BATCH_SIZE.get().max(1));
    // SAFETY: reads whether the current user is a superuser.
    let everything = unsafe { pg_sys::superuser() };
    let mut total = 0;
    loop {
        let want = max_rows.map_or(batch, |m| batch.min(i64::from(m) - total));
        let handled = process_batch(want as usize, everything)?;
        transactions.commit();
        total += handled;
        if handled == 0 || max_rows.is_some_and(|m| total >= i64::from(m)) {
            break;
        }
    }
    notice!("process_embedding_queue: {total} queue entries handled");
    Ok(())
}

/// Drains up to `max_rows` due entries of one column. `everything`: all columns (worker,
/// superuser); otherwise only those set up by roles the caller is a member of. Returns the
/// number of entries handled (0: nothing due).
pub fn process_batch(max_rows: usize, everything: bool) -> Result<i64> {
    let caller = current_user();
    let Some(work) = as_extension_owner(|| take(max_rows, everything, caller))? else {
        return Ok(0);
    };
    let handled = work.ids.len() as i64;
    match in_subtransaction(|| run_as(work.run_as, || embed_entries(&work))) {
        Ok(()) => Ok(handled),
        Err(message) => {
            record_failure(&work, &message)?;
            Ok(handled)
        }
    }
}

/// Takes (locks until the batch commits) the due entries of one column; entries another drain
/// holds are skipped, so two drains at once never embed the same row twice.
fn take(max_rows: usize, everything: bool, caller: Oid) -> Result<Option<Work>> {
    Ok(Spi::connect_mut(|client| {
        let rows = client.update(
            "WITH next AS (
                SELECT q.tbl, q.target_column FROM llm_sql.embedding_queue q
                  JOIN llm_sql.auto_embeddings c USING (tbl, target_column)
                 WHERE q.next_attempt_at <= pg_catalog.now()
                   AND ($2 OR pg_catalog.pg_has_role($3, c.run_as, 'MEMBER'))
                 ORDER BY q.next_attempt_at, q.id LIMIT 1
                   FOR UPDATE OF q SKIP LOCKED)
             SELECT c.tbl::oid, c.source_column::text, c.target_column::text, c.model, c.run_as,
                    c.key_columns::text[],
                    array_agg(q.id ORDER BY q.id), array_agg(q.version ORDER BY q.id),
                    array_agg(q.row_key ORDER BY q.id)
               FROM next JOIN llm_sql.auto_embeddings c USING (tbl, target_column)
               CROSS JOIN LATERAL (
                    SELECT * FROM llm_sql.embedding_queue q
                     WHERE q.tbl = c.tbl AND q.target_column = c.target_column
                       AND q.next_attempt_at <= pg_catalog.now()
                     ORDER BY q.id LIMIT $1
                       FOR UPDATE SKIP LOCKED) q
              GROUP BY 1, 2, 3, 4, 5, 6",
            Some(1),
            &[(max_rows as i64).into(), everything.into(), caller.into()],
        )?;
        let mut work = None;
        for row in rows {
            work = Some(Work {
                table: row.get::<Oid>(1)?.unwrap_or(Oid::INVALID),
                source: row.get::<String>(2)?.unwrap_or_default(),
                target: row.get::<String>(3)?.unwrap_or_default(),
                model: row.get::<String>(4)?.unwrap_or_default(),
                run_as: row.get::<Oid>(5)?.unwrap_or(Oid::INVALID),
                key_columns: row.get::<Vec<String>>(6)?.unwrap_or_default(),
                ids: row.get::<Vec<i64>>(7)?.unwrap_or_default(),
                versions: row.get::<Vec<i64>>(8)?.unwrap_or_default(),
                keys: row.get::<Vec<JsonB>>(9)?.unwrap_or_default(),
            });
        }
        Ok::<_, pgrx::spi::Error>(work)
    })?)
}

/// Reads, embeds and stores the rows of `work` (as its role), then removes its entries.
fn embed_entries(work: &Work) -> Result<()> {
    let columns = Columns::resolve(work.table, Some(&work.source), &work.target)?;
    let key_types = Spi::get_one_with_args::<Vec<String>>(
        "SELECT array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY k.ord)
           FROM pg_catalog.unnest($2::name[]) WITH ORDINALITY AS k(name, ord)
           JOIN pg_catalog.pg_attribute a ON a.attrelid = $1 AND a.attname = k.name",
        &[work.table.into(), work.key_columns.clone().into()],
    )?
    .unwrap_or_default();
    let key_match: Vec<String> = work
        .key_columns
        .iter()
        .zip(&key_types)
        .enumerate()
        .map(|(i, (name, ty))| format!("t.{} = (u.k->>{i})::{ty}", ident(name)))
        .collect();
    let key_match = key_match.join(" AND ");
    let keys: Vec<JsonB> = work.keys.iter().map(|k| JsonB(k.0.clone())).collect();
    // The current text of each queued row that still exists.
    let found: Vec<(i64, Option<String>)> = Spi::connect(|client| {
        let mut found = Vec::new();
        for row in client.select(
            &format!(
                "SELECT u.ord, t.{src}::text FROM pg_catalog.unnest($1::jsonb[]) WITH ORDINALITY AS u(k, ord)
                   JOIN {tbl} t ON {key_match}",
                src = columns.source,
                tbl = columns.qualified,
            ),
            None,
            &[keys.into()],
        )? {
            found.push((row.get::<i64>(1)?.unwrap_or(0), row.get::<String>(2)?));
        }
        Ok::<_, pgrx::spi::Error>(found)
    })?;
    let texts: Vec<Option<String>> = found.iter().map(|(_, t)| t.clone()).collect();
    let vectors = columns.embed(&texts, &work.model, crate::embeddings::batch_size(None)?)?;
    let found_keys: Vec<JsonB> = found
        .iter()
        .map(|(ord, _)| JsonB(work.keys[(*ord - 1) as usize].0.clone()))
        .collect();
    let vector_refs: Vec<Option<&[f32]>> = vectors.iter().map(|v| v.as_deref()).collect();
    backfill::store(
        &format!(
            "UPDATE {tbl} AS t SET {tgt} = u.e::{target_type}
               FROM ROWS FROM (pg_catalog.unnest($1::jsonb[]), pg_catalog.unnest($2::text[]),
                              pg_catalog.unnest($3)) AS u(k, src, e)
              WHERE {key_match} AND t.{src}::text IS NOT DISTINCT FROM u.src",
            tbl = columns.qualified,
            tgt = columns.target,
            target_type = columns.target_type,
            src = columns.source,
        ),
        &columns,
        found_keys.into(),
        texts.into(),
        &vector_refs,
    )?;
    as_extension_owner(|| {
        Spi::run_with_args(
            "DELETE FROM llm_sql.embedding_queue q
              USING ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::int8[])) AS u(id, version)
              WHERE q.id = u.id AND q.version = u.version",
            &[work.ids.clone().into(), work.versions.clone().into()],
        )?;
        Ok(())
    })
}

/// Keeps the entries with the error, due again after 5 s, 10 s, 20 s, … at most an hour.
fn record_failure(work: &Work, message: &str) -> Result<()> {
    as_extension_owner(|| {
        Spi::run_with_args(
            "UPDATE llm_sql.embedding_queue
                SET attempts = attempts + 1, last_error = $2,
                    next_attempt_at = pg_catalog.now()
                        + least(3600, 5 * 2 ^ least(attempts, 12))
                          * interval '1 second'
              WHERE id = ANY ($1)",
            &[work.ids.clone().into(), message.into()],
        )?;
        Ok(())
    })
}

/// Runs `f` in a subtransaction: a Postgres error inside (a privilege lost, a table dropped)
/// or an error of ours rolls it back and comes back as a message.
fn in_subtransaction(f: impl FnOnce() -> Result<()>) -> std::result::Result<(), String> {
    subxact::run(OnSuccess::Keep, f).map_err(|e| e.message)
}
