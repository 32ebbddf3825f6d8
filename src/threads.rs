//! Thread and signal primitives every part of llm_sql that waits or starts threads shares
//! (DuckDB calls, HTTP calls to the model server, the built-in model, the local-table scan).
//!
//! Postgres's signal handlers must run on the backend thread only, and only the backend thread
//! may call Postgres; a thread that waits on the backend's behalf can still read the flags the
//! handlers set, which is what [`cancel_requested`] does.

use pgrx::pg_sys;

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
