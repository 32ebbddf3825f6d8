//! The background worker: drains `llm_sql.embedding_queue` of one database
//! (`llm_sql.worker_database`) every `llm_sql.worker_naptime`, when llm_sql is in
//! `shared_preload_libraries`, and stores again the database's stored copies of tables that
//! changed enough since (`crate::local::copy`). It connects as the bootstrap superuser but reads
//! and writes each table as the role that set up its auto-embedding (see `embeddings::queue`),
//! and its own SQL resolves names only in `pg_catalog` and llm_sql's schema.

use std::time::Duration;

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;

use crate::error::{Error, Result};
use crate::settings;

/// What the worker shows as backend_type in pg_stat_activity.
pub const WORKER_TYPE: &str = "llm_sql embedding worker";

/// Registers the worker; only possible while shared_preload_libraries is loaded.
pub fn register() {
    // SAFETY: reads a flag set by the postmaster while it loads preload libraries.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    BackgroundWorkerBuilder::new(WORKER_TYPE)
        .set_type(WORKER_TYPE)
        .set_library("llm_sql")
        .set_function("llm_sql_embedding_worker_main")
        .enable_spi_access()
        .set_restart_time(Some(Duration::from_secs(10)))
        .load();
}

/// True when an embedding worker is connected to the current database.
pub fn serves_current_database() -> Result<bool> {
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity
                         WHERE backend_type = $1 AND datname = pg_catalog.current_database())",
        &[WORKER_TYPE.into()],
    )?
    .unwrap_or(false))
}

/// Warns, when no worker serves the current database, that queued rows wait.
pub fn warn_if_absent() -> Result<()> {
    if serves_current_database()? {
        return Ok(());
    }
    let database =
        Spi::get_one::<String>("SELECT pg_catalog.current_database()::text")?.unwrap_or_default();
    Error::new(
        pgrx::PgSqlErrorCode::ERRCODE_WARNING,
        format!("no llm_sql embedding worker serves database \"{database}\": queued rows wait until one does"),
    )
    .with_hint(format!(
        "Start one: shared_preload_libraries = 'llm_sql' and llm_sql.worker_database = '{database}' in \
         postgresql.conf, then restart the server. Meanwhile CALL llm_sql.process_embedding_queue() \
         embeds the queued rows."
    ))
    .warn();
    Ok(())
}

fn naptime() -> Duration {
    Duration::from_millis(settings::WORKER_NAPTIME_MS.get().max(100) as u64)
}

/// Waits for the naptime; false when the worker should stop. Reloads the configuration on SIGHUP.
fn nap() -> bool {
    let go_on = BackgroundWorker::wait_latch(Some(naptime()));
    if BackgroundWorker::sighup_received() {
        // SAFETY: the standard reload of postgresql.conf in a background worker.
        unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
    }
    go_on && !BackgroundWorker::sigterm_received()
}

/// # Safety
/// Called by the postmaster as the worker's main function.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn llm_sql_embedding_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    // Without a database there is nothing to do; wait until one is configured (SIGHUP).
    let database = loop {
        if let Some(database) = settings::string(&settings::WORKER_DATABASE) {
            break database;
        }
        if !nap() {
            return;
        }
    };
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    // The worker is a superuser session: whatever it runs itself resolves names only in
    // pg_catalog and llm_sql's schema, never in schemas other roles can create objects in.
    // SAFETY: sets a built-in setting for the session, inside a transaction.
    BackgroundWorker::transaction(|| unsafe {
        crate::run_as::pin_search_path(pg_sys::GucAction::GUC_ACTION_SET)
    });
    log!("llm_sql embedding worker started for database \"{database}\"");
    let mut copies = StoredCopies::default();
    loop {
        drain();
        refresh_copies(&mut copies);
        if !nap() {
            break;
        }
    }
}

/// How long a table whose copy could not be stored again waits before the next try (a column
/// type a copy cannot hold, a full disk: nothing that goes away by itself in seconds).
const RETRY_STORE_AFTER: Duration = Duration::from_secs(600);

/// The worker's DuckDB for refreshing stored copies (opened on first need, without
/// attachments), and the tables whose last try failed.
#[derive(Default)]
struct StoredCopies {
    instance: Option<crate::session::Instance>,
    failed: std::collections::HashMap<pg_sys::Oid, std::time::Instant>,
}

/// Stores again the stored copies of this database that fell behind their tables.
fn refresh_copies(copies: &mut StoredCopies) {
    let StoredCopies { instance, failed } = copies;
    failed.retain(|_, at| at.elapsed() < RETRY_STORE_AFTER);
    if !crate::local::copy::any_stored() {
        return;
    }
    // (A panic ends the worker, which restarts afresh: nothing half-updated is used again.)
    BackgroundWorker::transaction(std::panic::AssertUnwindSafe(|| {
        if !installed() {
            return;
        }
        // SAFETY: inside a transaction; popped below. The copies are read with this snapshot.
        unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
        let refreshed = (|| -> Result<Vec<_>> {
            if instance.is_none() {
                *instance = Some(crate::session::Instance::open_private()?);
            }
            let instance = instance.as_ref().expect("opened above");
            // In a subtransaction: an ERROR (a table dropped meanwhile) ends this round only.
            crate::subxact::run(crate::subxact::OnSuccess::Keep, || {
                crate::local::refresh_stored(
                    instance.connection(),
                    &instance.copies,
                    &instance.duckdb_options(),
                    |relid| failed.contains_key(&relid),
                )
            })
        })();
        // SAFETY: pushed above.
        unsafe { pg_sys::PopActiveSnapshot() };
        match refreshed {
            Ok(tables) => {
                for (relid, outcome) in tables {
                    match outcome {
                        Ok(rows) => log!(
                            "llm_sql: stored the copy of table {} again ({rows} rows)",
                            table_name(relid)
                        ),
                        Err(e) => {
                            failed.insert(relid, std::time::Instant::now());
                            warning!(
                                "llm_sql: could not store the copy of table {} again (next try in {} minutes): {}",
                                table_name(relid),
                                RETRY_STORE_AFTER.as_secs() / 60,
                                e.message
                            )
                        }
                    }
                }
            }
            Err(e) => warning!("llm_sql worker: stored copies: {}", e.message),
        }
    }));
}

/// The table's name as `regclass` shows it (schema-qualified: the worker's search_path holds
/// only pg_catalog and llm_sql).
fn table_name(relid: pg_sys::Oid) -> String {
    Spi::get_one_with_args::<String>("SELECT $1::pg_catalog.regclass::text", &[relid.into()])
        .ok()
        .flatten()
        .unwrap_or_else(|| format!("with OID {}", u32::from(relid)))
}

fn installed() -> bool {
    Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'llm_sql')",
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// Handles due entries, one committed batch at a time, until none are left.
fn drain() {
    loop {
        if BackgroundWorker::sigterm_received() {
            return;
        }
        let handled = BackgroundWorker::transaction(|| {
            if !installed() {
                return 0;
            }
            let batch = settings::EMBEDDING_BATCH_SIZE.get().max(1) as usize;
            match crate::embeddings::queue::process_batch(batch, true) {
                Ok(handled) => handled,
                Err(e) => {
                    warning!("llm_sql embedding worker: {}", e.message);
                    0
                }
            }
        });
        if handled == 0 {
            return;
        }
    }
}
