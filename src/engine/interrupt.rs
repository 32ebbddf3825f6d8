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

use pgrx::pg_sys;

use super::ffi::InterruptTarget;

/// How often the watcher looks at the flags while a DuckDB call runs.
const POLL: Duration = Duration::from_millis(5);

struct Watcher {
    /// The connection of the DuckDB call under way. The lock is held while interrupting, so the
    /// backend cannot close the connection in between.
    target: Mutex<Option<InterruptTarget>>,
    thread: Thread,
}

static WATCHER: OnceLock<Arc<Watcher>> = OnceLock::new();

/// True when Postgres wants the current statement (or the backend) to stop, or when the
/// client has gone away and `client_connection_check_interval` asked to notice that.
pub fn cancel_requested() -> bool {
    // SAFETY: plain reads of volatile sig_atomic_t flags that signal handlers set.
    unsafe {
        std::ptr::read_volatile(std::ptr::addr_of!(pg_sys::QueryCancelPending)) != 0
            || std::ptr::read_volatile(std::ptr::addr_of!(pg_sys::ProcDiePending)) != 0
            || (std::ptr::read_volatile(std::ptr::addr_of!(pg_sys::CheckClientConnectionPending))
                != 0
                && client_gone())
    }
}

/// Postgres's own check (pq_check_connection) does the same poll, but only at
/// CHECK_FOR_INTERRUPTS, which a backend blocked in DuckDB does not reach. This one only reads
/// the socket's number and polls it, so the watcher thread may call it too. Once DuckDB stops,
/// CHECK_FOR_INTERRUPTS finds the pending check and ends the backend as Postgres would.
fn client_gone() -> bool {
    // SAFETY: MyProcPort is set once at backend start (NULL in background workers). pgrx
    // leaves Port opaque; its first field is `pgsocket sock` (an int on Unix, libpq-be.h).
    let socket = unsafe {
        let port = std::ptr::read_volatile(std::ptr::addr_of!(pg_sys::MyProcPort));
        if port.is_null() {
            return false;
        }
        *port.cast::<libc::c_int>()
    };
    let mut probe = libc::pollfd {
        fd: socket,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: poll of one descriptor without waiting.
    let ready = unsafe { libc::poll(&mut probe, 1, 0) };
    ready > 0 && probe.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

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

/// Runs `f` with every signal blocked on this thread, so that threads it starts (DuckDB's
/// workers, the watcher) inherit a mask that keeps Postgres's handlers off them.
pub fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(libc::sigset_t);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: restores the mask saved below.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
        }
    }
    // SAFETY: sigfillset/pthread_sigmask on stack-allocated sets.
    let _restore = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        Restore(old)
    };
    f()
}
