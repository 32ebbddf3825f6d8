//! Lets `pg_cancel_backend`, `statement_timeout` and `pg_terminate_backend` stop DuckDB.
//!
//! Postgres's signal handlers only set flags (QueryCancelPending, ProcDiePending) that the
//! backend checks at CHECK_FOR_INTERRUPTS; while the backend thread is inside a blocking DuckDB
//! call nobody would look at them. A small watcher thread does: while a DuckDB call is under
//! way it reads the two flags every few milliseconds and, when one is set, calls
//! `duckdb_interrupt` on that call's connection. The DuckDB call then returns an INTERRUPT error
//! and the backend thread lets Postgres raise the cancel/timeout/terminate error itself.
//!
//! A client that went away counts too, when `client_connection_check_interval` asks to notice
//! it (Postgres then sets CheckClientConnectionPending at that interval).
//!
//! The watcher only reads `sig_atomic_t` globals, polls the client's socket and calls DuckDB; it never calls into
//! Postgres. Like every thread llm_sql starts, it is created with all signals blocked so that
//! Postgres's signal handlers keep running on the backend thread only.

use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::Duration;

use super::ffi::InterruptTarget;
use crate::threads::{cancel_requested, with_signals_blocked};

/// How often the watcher looks at the flags while a DuckDB call runs.
const POLL: Duration = Duration::from_millis(5);

struct Watcher {
    /// The connection of the DuckDB call under way. The lock is held while interrupting, so the
    /// backend cannot close the connection in between.
    target: Mutex<Option<InterruptTarget>>,
    thread: Thread,
}

static WATCHER: OnceLock<Arc<Watcher>> = OnceLock::new();

fn watcher() -> &'static Arc<Watcher> {
    WATCHER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Arc<Watcher>>();
        let handle = with_signals_blocked(|| {
            thread::Builder::new()
                .name("llm_sql interrupt watcher".into())
                .spawn(move || {
                    let Ok(watcher) = rx.recv() else { return };
                    watch(&watcher);
                })
                .expect("could not start the llm_sql interrupt watcher thread")
        });
        let watcher = Arc::new(Watcher {
            target: Mutex::new(None),
            thread: handle.thread().clone(),
        });
        let _ = tx.send(Arc::clone(&watcher));
        watcher
    })
}

fn watch(watcher: &Watcher) {
    loop {
        let active = watcher.target.lock().map(|t| t.is_some()).unwrap_or(false);
        if !active {
            thread::park();
            continue;
        }
        if cancel_requested() {
            if let Ok(target) = watcher.target.lock() {
                if let Some(target) = *target {
                    target.interrupt();
                }
            }
        }
        thread::park_timeout(POLL);
    }
}

/// Clears the watched connection when the DuckDB call ends, also when it unwinds.
struct Watching(&'static Watcher);

impl Drop for Watching {
    fn drop(&mut self) {
        if let Ok(mut target) = self.0.target.lock() {
            *target = None;
        }
    }
}

/// Runs `call` (a blocking DuckDB call on `target`'s connection) so that a Postgres cancel,
/// timeout or terminate request interrupts it.
pub fn interruptible<T>(target: InterruptTarget, call: impl FnOnce() -> T) -> T {
    let watcher: &'static Watcher = watcher();
    if let Ok(mut slot) = watcher.target.lock() {
        *slot = Some(target);
    }
    let _watching = Watching(watcher);
    watcher.thread.unpark();
    call()
}
