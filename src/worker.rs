//! The embedding background worker: drains `llm_sql.embedding_queue` of one database
//! (`llm_sql.worker_database`) every `llm_sql.worker_naptime`, when llm_sql is in
//! `shared_preload_libraries`. It connects as the bootstrap superuser but reads and writes each
//! table as the role that set up its auto-embedding (see `embeddings::queue`), and its own SQL
//! resolves names only in `pg_catalog` and llm_sql's schema.

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
    loop {
        drain();
        if !nap() {
            break;
        }
    }
}

/// Handles due entries, one committed batch at a time, until none are left.
fn drain() {
    loop {
        if BackgroundWorker::sigterm_received() {
            return;
        }
        let handled = BackgroundWorker::transaction(|| {
            let installed = Spi::get_one::<bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'llm_sql')",
            )
            .ok()
            .flatten()
            .unwrap_or(false);
            if !installed {
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
