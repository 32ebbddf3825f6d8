//! Procedures written in Rust that commit as they go (`embed_column`, `process_embedding_queue`).
//!
//! A C-language procedure called by a top-level CALL may end and start transactions through
//! SPI's non-atomic mode, as PL/pgSQL's COMMIT does, without any PL/pgSQL (which would resolve
//! its operators through the caller's search_path, and cannot be pinned to another: a
//! procedure with a SET clause may not commit).

use pgrx::pg_sys;
use pgrx::PgSqlErrorCode;

use crate::error::{Error, Result};

/// The procedure's own transactions, from the call to its end.
pub struct Transactions {
    /// Called where no COMMIT is possible (inside a transaction block, from a function): the
    /// work then stays in the caller's transaction.
    atomic: bool,
    /// The snapshot pushed after the last commit (the CALL's own is released by the first one).
    pushed_snapshot: bool,
}

impl Transactions {
    /// Starts committing on behalf of the procedure called with `fcinfo`, if its caller allows.
    ///
    /// # Safety
    /// `fcinfo` must be the call info of a procedure call.
    pub unsafe fn begin(fcinfo: pg_sys::FunctionCallInfo) -> Transactions {
        // SAFETY: the context of a CALL is a CallContext node (checked by its tag).
        let atomic = unsafe {
            let context = (*fcinfo).context;
            context.is_null()
                || (*context).type_ != pg_sys::NodeTag::T_CallContext
                || (*(context as *mut pg_sys::CallContext)).atomic
        };
        if !atomic {
            // SAFETY: a non-atomic SPI connection for a non-atomic CALL, finished in Drop.
            unsafe { pg_sys::SPI_connect_ext(pg_sys::SPI_OPT_NONATOMIC as i32) };
        }
        Transactions {
            atomic,
            pushed_snapshot: false,
        }
    }

    /// An error unless the procedure `name` can commit as it goes.
    pub fn require_commits(&self, name: &str) -> Result<()> {
        if !self.atomic {
            return Ok(());
        }
        Err(Error::new(
            PgSqlErrorCode::ERRCODE_ACTIVE_SQL_TRANSACTION,
            format!("{name} commits after every batch and cannot run inside a transaction block"),
        )
        .with_hint("CALL it on its own, not between BEGIN and COMMIT or from a function."))
    }

    /// Commits the work so far and starts the next transaction, with a fresh snapshot for the
    /// queries that follow; nothing when called where no COMMIT is possible.
    pub fn commit(&mut self) {
        if self.atomic {
            return;
        }
        // SAFETY: no SPI connection of ours is open but the non-atomic one (every Spi::connect
        // has returned), and no subtransaction is open: what SPI_commit requires.
        unsafe {
            self.pop_snapshot();
            pg_sys::SPI_commit();
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        }
        self.pushed_snapshot = true;
    }

    unsafe fn pop_snapshot(&mut self) {
        if std::mem::take(&mut self.pushed_snapshot) {
            // SAFETY: pops the snapshot this value pushed, still the active one.
            unsafe { pg_sys::PopActiveSnapshot() };
        }
    }
}

impl Drop for Transactions {
    fn drop(&mut self) {
        // After an error, the transaction's abort releases the snapshot and the connection.
        if !self.atomic && !std::thread::panicking() {
            // SAFETY: releases what `begin` and `commit` took, in reverse order.
            unsafe {
                self.pop_snapshot();
                pg_sys::SPI_finish();
            }
        }
    }
}
