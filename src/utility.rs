//! The ProcessUtility hook: what llm_sql does around Postgres's utility statements.
//!
//! - Inside a query that `ask` runs, no utility statement runs at all (nl2sql::sandbox).
//! - `DISCARD ALL`, the reset query of connection poolers (PgBouncer's `server_reset_query`),
//!   also drops the backend's DuckDB instances, so that DuckDB tables, settings and attached
//!   databases of one client never reach the next client of the same backend.

use pgrx::pg_sys;
use pgrx::prelude::*;

/// Where a utility statement goes after us: the hook we replaced, or Postgres's own.
static mut NEXT_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

unsafe extern "C-unwind" {
    /// Postgres's own ProcessUtility as a C function pointer of the hook's type (pgrx binds it
    /// only as a Rust wrapper).
    #[link_name = "standard_ProcessUtility"]
    fn standard_process_utility(
        statement: *mut pg_sys::PlannedStmt,
        query_string: *const std::ffi::c_char,
        read_only_tree: bool,
        context: pg_sys::ProcessUtilityContext::Type,
        params: pg_sys::ParamListInfo,
        query_env: *mut pg_sys::QueryEnvironment,
        dest: *mut pg_sys::DestReceiver,
        completion: *mut pg_sys::QueryCompletion,
    );
}

/// Installs the hook; called from `_PG_init`.
pub fn init() {
    // SAFETY: runs once, on the backend thread, while the library loads.
    unsafe {
        NEXT_PROCESS_UTILITY = pg_sys::ProcessUtility_hook.or(Some(standard_process_utility));
        pg_sys::ProcessUtility_hook = Some(process_utility);
    }
}

/// True for `DISCARD ALL`.
unsafe fn is_discard_all(statement: *mut pg_sys::PlannedStmt) -> bool {
    // SAFETY: a utility statement's node.
    unsafe {
        let node = (*statement).utilityStmt;
        !node.is_null()
            && (*node).type_ == pg_sys::NodeTag::T_DiscardStmt
            && (*node.cast::<pg_sys::DiscardStmt>()).target == pg_sys::DiscardMode::DISCARD_ALL
    }
}

#[pg_guard]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    statement: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    completion: *mut pg_sys::QueryCompletion,
) {
    crate::nl2sql::sandbox::check_utility(statement);
    // SAFETY: passes the call on unchanged, as Postgres would have made it.
    unsafe {
        if let Some(next) = NEXT_PROCESS_UTILITY {
            #[allow(ffi_unwind_calls, reason = "guarded by pg_guard_ffi_boundary")]
            pg_sys::ffi::pg_guard_ffi_boundary(|| {
                next(
                    statement,
                    query_string,
                    read_only_tree,
                    context,
                    params,
                    query_env,
                    dest,
                    completion,
                )
            });
        }
        // (DISCARD ALL cannot run inside a transaction block, so nothing rolls this back.)
        if is_discard_all(statement) {
            crate::session::reset();
        }
    }
}
