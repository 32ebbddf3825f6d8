//! Internal subtransactions: run a piece of work so that a Postgres error inside it (a privilege
//! lost, a table dropped, a bad query) is rolled back and comes back as an `Error` value instead
//! of aborting the caller's transaction. A cancel or a shutdown is raised again, never caught.
//!
//! With a time limit, the work runs under Postgres's own statement timer, set to the limit (or
//! left alone when the caller's statement_timeout comes first) and restored afterwards; running
//! out of time is then an error like any other, while the caller's own timeout still cancels.

use std::ffi::c_int;
use std::time::Duration;

use pgrx::pg_sys::{self, panic::CaughtError, PgTryBuilder};
use pgrx::PgSqlErrorCode;

use crate::error::{Error, Result};

/// What happens to the subtransaction's work when `f` succeeds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnSuccess {
    /// Keep it (release the subtransaction into the caller's transaction).
    Keep,
    /// Undo it anyway: for work that must leave nothing behind, such as a read-only query
    /// run with settings changed just for it.
    RollBack,
}

/// Runs `f` in a subtransaction. Errors of `f` and Postgres errors raised inside it roll the
/// subtransaction back and are returned; cancel and shutdown are raised again.
pub fn run<T>(on_success: OnSuccess, f: impl FnOnce() -> Result<T>) -> Result<T> {
    run_within(on_success, None, f)
}

/// `run`, stopping `f` after `limit`: then the error is 57014 with a message that names
/// `setting`.
pub fn run_within<T>(
    on_success: OnSuccess,
    limit: Option<(Duration, &str)>,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let timer = limit.map(|(limit, setting)| Timer::start(limit, setting));
    let outcome = subtransaction(on_success, timer.is_some(), f);
    match timer {
        Some(timer) => timer.stop(outcome),
        None => outcome,
    }
}

/// `limited`: a timer of ours runs, so a statement timeout may be ours rather than the caller's.
fn subtransaction<T>(
    on_success: OnSuccess,
    limited: bool,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    // SAFETY: the standard internal-subtransaction pattern (as in PL/pgSQL's exception blocks):
    // remember the memory context and resource owner, and restore them on both paths.
    unsafe {
        let context = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(context);
        let end = |keep: bool| {
            if keep {
                pg_sys::ReleaseCurrentSubTransaction();
            } else {
                pg_sys::RollbackAndReleaseCurrentSubTransaction();
            }
            pg_sys::MemoryContextSwitchTo(context);
            pg_sys::CurrentResourceOwner = owner;
        };
        let f = std::panic::AssertUnwindSafe(f);
        let outcome = PgTryBuilder::new(move || Ok(f()))
            .catch_others(|caught| Err(Box::new(caught)))
            .execute();
        match outcome {
            Ok(Ok(value)) => {
                end(on_success == OnSuccess::Keep);
                Ok(value)
            }
            Ok(Err(error)) => {
                end(false);
                if error.code == PgSqlErrorCode::ERRCODE_QUERY_CANCELED
                    && !(limited && Timer::ran_out())
                {
                    error.report();
                }
                Err(error)
            }
            Err(caught) => {
                end(false);
                match as_error(&caught) {
                    Some(error) => Err(error),
                    None if limited && Timer::ran_out() => Err(Error::new(
                        PgSqlErrorCode::ERRCODE_QUERY_CANCELED,
                        "time limit reached",
                    )),
                    None => caught.rethrow(),
                }
            }
        }
    }
}

/// Runs `f`; a cancel or statement timeout that ends it is raised again (same SQLSTATE and
/// message) with `hint`, e.g. what was kept and how to go on.
pub fn with_hint_on_cancel<T>(hint: impl Fn() -> String, f: impl FnOnce() -> T) -> T {
    let hint = std::panic::AssertUnwindSafe(&hint);
    PgTryBuilder::new(std::panic::AssertUnwindSafe(f))
        .catch_when(PgSqlErrorCode::ERRCODE_QUERY_CANCELED, |caught| {
            let message = match &caught {
                CaughtError::PostgresError(e)
                | CaughtError::ErrorReport(e)
                | CaughtError::RustPanic { ereport: e, .. } => e.message().to_string(),
            };
            Error::new(PgSqlErrorCode::ERRCODE_QUERY_CANCELED, message)
                .with_hint((*hint)())
                .report()
        })
        .execute()
}

/// A caught Postgres error as ours; None for cancel and shutdown, which must go on.
fn as_error(caught: &CaughtError) -> Option<Error> {
    let report = match caught {
        CaughtError::PostgresError(e)
        | CaughtError::ErrorReport(e)
        | CaughtError::RustPanic { ereport: e, .. } => e,
    };
    let code = report.sql_error_code();
    if matches!(
        code,
        PgSqlErrorCode::ERRCODE_QUERY_CANCELED | PgSqlErrorCode::ERRCODE_ADMIN_SHUTDOWN
    ) {
        return None;
    }
    Some(Error {
        code,
        message: report.message().to_string(),
        detail: report.detail().map(str::to_string),
        hint: report.hint().map(str::to_string),
    })
}

// Postgres's timeout API (utils/timeout.h), which pgrx does not bind.
const STATEMENT_TIMEOUT: c_int = 3;
mod timeout_h {
    use super::{c_int, pg_sys};
    unsafe extern "C-unwind" {
        pub fn enable_timeout_at(id: c_int, fin_time: pg_sys::TimestampTz);
        pub fn disable_timeout(id: c_int, keep_indicator: bool);
        pub fn get_timeout_active(id: c_int) -> bool;
        pub fn get_timeout_finish_time(id: c_int) -> pg_sys::TimestampTz;
    }
}

// Called the way pgrx calls its own bindings: an ERROR inside becomes a Rust panic here.
#[allow(ffi_unwind_calls, reason = "guarded by pg_guard_ffi_boundary")]
unsafe fn enable_timeout_at(id: c_int, fin_time: pg_sys::TimestampTz) {
    unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| timeout_h::enable_timeout_at(id, fin_time)) }
}

#[allow(ffi_unwind_calls, reason = "guarded by pg_guard_ffi_boundary")]
unsafe fn disable_timeout(id: c_int, keep_indicator: bool) {
    unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| timeout_h::disable_timeout(id, keep_indicator)) }
}

#[allow(ffi_unwind_calls, reason = "guarded by pg_guard_ffi_boundary")]
unsafe fn get_timeout_active(id: c_int) -> bool {
    unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| timeout_h::get_timeout_active(id)) }
}

#[allow(ffi_unwind_calls, reason = "guarded by pg_guard_ffi_boundary")]
unsafe fn get_timeout_finish_time(id: c_int) -> pg_sys::TimestampTz {
    unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| timeout_h::get_timeout_finish_time(id)) }
}

thread_local! {
    /// When the running limited work must stop (microseconds, Postgres timestamps).
    static DEADLINE: std::cell::Cell<Option<pg_sys::TimestampTz>> = const { std::cell::Cell::new(None) };
}

/// The statement timer set for one piece of work.
struct Timer {
    /// The caller's statement timeout, to put back; None when it was not running.
    outer: Option<pg_sys::TimestampTz>,
    /// Whether ours replaced it (it did not when the caller's came first).
    armed: bool,
    limit: Duration,
    setting: String,
}

impl Timer {
    fn start(limit: Duration, setting: &str) -> Timer {
        // SAFETY: reads and sets the backend's statement timer, as postgres.c does.
        unsafe {
            let now = pg_sys::GetCurrentTimestamp();
            let deadline = now.saturating_add(limit.as_micros().min(i64::MAX as u128) as i64);
            let outer = get_timeout_active(STATEMENT_TIMEOUT)
                .then(|| get_timeout_finish_time(STATEMENT_TIMEOUT));
            let armed = outer.is_none_or(|outer| deadline < outer);
            if armed {
                enable_timeout_at(STATEMENT_TIMEOUT, deadline);
            }
            // Also cleared here: a cancel raised through the work skips `stop`.
            DEADLINE.with(|d| d.set(armed.then_some(deadline)));
            Timer {
                outer,
                armed,
                limit,
                setting: setting.to_string(),
            }
        }
    }

    /// True when a statement timeout that just fired was ours.
    fn ran_out() -> bool {
        // SAFETY: reads the clock.
        let now = unsafe { pg_sys::GetCurrentTimestamp() };
        DEADLINE
            .with(|d| d.get())
            .is_some_and(|deadline| now >= deadline)
    }

    /// Puts the caller's timer back and names the limit in a timeout error.
    fn stop<T>(self, outcome: Result<T>) -> Result<T> {
        DEADLINE.with(|d| d.set(None));
        if self.armed {
            // SAFETY: as in start.
            unsafe {
                match self.outer {
                    Some(outer) => enable_timeout_at(STATEMENT_TIMEOUT, outer),
                    None => disable_timeout(STATEMENT_TIMEOUT, false),
                }
            }
        }
        outcome.map_err(|error| {
            if self.armed && error.code == PgSqlErrorCode::ERRCODE_QUERY_CANCELED {
                Error::new(
                    PgSqlErrorCode::ERRCODE_QUERY_CANCELED,
                    format!(
                        "the query ran longer than {} ({} ms)",
                        self.setting,
                        self.limit.as_millis()
                    ),
                )
            } else {
                error
            }
        })
    }
}
