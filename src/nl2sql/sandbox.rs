//! What SQL written by a model may run. A model can be steered (a table COMMENT it reads, a
//! question someone else wrote), so its query must not run code the caller did not choose to
//! trust, even through a view, a domain's CHECK, an operator or an aggregate it names.
//!
//! The rule, for every function that would run:
//! * llm_sql's own functions never run (they reach DuckDB, the model server, files), but for
//!   the handler of its foreign-data wrapper, which only reads attachments as the caller.
//! * Built-in functions (Postgres's own catalog) run unless they are VOLATILE, except the few
//!   volatile ones that only produce a value (random, clock_timestamp, gen_random_uuid, …).
//! * Other functions run only if declared IMMUTABLE or STABLE *and* owned by a role the caller
//!   trusts: the caller itself, a superuser (so extensions such as pgvector), or a role named in
//!   `llm_sql.ask_trusted_roles`. A function owned by anyone else is refused whatever its owner
//!   declared.
//!
//! It holds at the moment each function is about to run: Postgres announces every function an
//! expression will call (ExecInitFunc, aggregates' transition and final functions, grouping
//! equality, domain CHECK constraints, constant folding in the planner) to the object access
//! hook, which refuses what the rule refuses, whether the call comes from the query, a view,
//! a row-level security policy, a domain, or a function's own body. The function manager's
//! hooks catch the rest: a refused function is never inlined by the planner (SQL functions)
//! and is refused as it starts, however it was reached. Utility statements (COPY,
//! SET, DO, …) are refused outright while a model's query runs, and session-level advisory locks
//! taken by it are released afterwards: the query's subtransaction is always rolled back, and
//! those locks are the one thing such a rollback would leave behind.
//!
//! `guard` applies the same rule to the analysed and rewritten query before anything runs, so
//! refusals come early and with the function named; the hook is what makes it hold.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{c_void, CStr};

use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use crate::error::{Error, Result};
use crate::run_as::current_user;
use crate::settings;

/// Volatile built-in functions that only produce a value.
const HARMLESS_VOLATILE: &[&str] = &[
    "random",
    "random_normal",
    "gen_random_uuid",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
];

thread_local! {
    /// The role whose `ask` is running a model's SQL right now.
    static CALLER: Cell<Option<Oid>> = const { Cell::new(None) };
    /// Decisions already made for the running query, by function.
    static DECIDED: RefCell<HashMap<Oid, std::result::Result<(), String>>> = RefCell::new(HashMap::new());
}

static mut PREVIOUS_OBJECT_ACCESS: pg_sys::object_access_hook_type = None;
static mut PREVIOUS_NEEDS_FMGR: pg_sys::needs_fmgr_hook_type = None;
static mut PREVIOUS_FMGR: pg_sys::fmgr_hook_type = None;

/// Installs the hooks; called from `_PG_init`. They do nothing unless a model's query runs.
pub fn init() {
    // SAFETY: runs once, on the backend thread, while the library loads.
    unsafe {
        PREVIOUS_OBJECT_ACCESS = pg_sys::object_access_hook;
        pg_sys::object_access_hook = Some(object_access);
        PREVIOUS_NEEDS_FMGR = pg_sys::needs_fmgr_hook;
        pg_sys::needs_fmgr_hook = Some(needs_fmgr);
        PREVIOUS_FMGR = pg_sys::fmgr_hook;
        pg_sys::fmgr_hook = Some(fmgr);
    }
}

/// The decision for `function` in the running query (None: no model's query runs).
fn decision(function: Oid) -> Option<std::result::Result<(), String>> {
    let caller = CALLER.with(|c| c.get())?;
    let known = DECIDED.with(|d| d.borrow().get(&function).cloned());
    Some(known.unwrap_or_else(|| {
        let decision = check_function(function, caller);
        DECIDED.with(|d| d.borrow_mut().insert(function, decision.clone()));
        decision
    }))
}

/// Why `function` may not run in a query of `caller`'s `ask`; Ok when it may.
pub fn check_function(function: Oid, caller: Oid) -> std::result::Result<(), String> {
    // SAFETY: catalog lookups of the function on the backend thread.
    unsafe {
        let Some(proc) = pgrx::pg_catalog::pg_proc::PgProc::new(function) else {
            return Ok(());
        };
        let name_ptr = pg_sys::get_func_name(function);
        let name = if name_ptr.is_null() {
            format!("with OID {}", function.to_u32())
        } else {
            CStr::from_ptr(name_ptr).to_string_lossy().into_owned()
        };
        let schema = pg_sys::get_func_namespace(function);
        let ours = pg_sys::get_extension_oid(c"llm_sql".as_ptr(), true);
        let llm_sqls = schema == pg_sys::get_namespace_oid(c"llm_sql".as_ptr(), true)
            || (ours != Oid::INVALID
                && pg_sys::getExtensionOfObject(pg_sys::ProcedureRelationId, function) == ours);
        // The handler of llm_sql_fdw is what reads a foreign table of an attachment (queries
        // over attachments are asked about too): only reads, as the caller.
        if llm_sqls && proc.prorettype() == pg_sys::FDW_HANDLEROID {
            return Ok(());
        }
        if llm_sqls {
            return Err(format!(
                "function {name}() is llm_sql's own; it does not run inside a query that ask runs"
            ));
        }
        let volatile = matches!(
            proc.provolatile(),
            pgrx::pg_catalog::pg_proc::ProVolatile::Volatile
        );
        if function.to_u32() < pg_sys::FirstNormalObjectId {
            return match volatile && !HARMLESS_VOLATILE.contains(&name.as_str()) {
                true => Err(format!(
                    "function {name}() may change data or state (it is VOLATILE) and is not allowed"
                )),
                false => Ok(()),
            };
        }
        if volatile {
            return Err(format!(
                "function {name}() is VOLATILE: ask runs only functions declared IMMUTABLE or STABLE"
            ));
        }
        let owner = proc.proowner();
        if owner == caller || pg_sys::superuser_arg(owner) || trusted_role(owner) {
            return Ok(());
        }
        let owner_name = pg_sys::GetUserNameFromId(owner, true);
        let owner_name = if owner_name.is_null() {
            format!("OID {}", owner.to_u32())
        } else {
            CStr::from_ptr(owner_name).to_string_lossy().into_owned()
        };
        Err(format!(
            "function {name}() belongs to role {owner_name}, which ask does not trust (see llm_sql.ask_trusted_roles)"
        ))
    }
}

/// Whether `role` is named in `llm_sql.ask_trusted_roles`.
fn trusted_role(role: Oid) -> bool {
    let Some(list) = settings::string(&settings::ASK_TRUSTED_ROLES) else {
        return false;
    };
    list.split(',').map(str::trim).any(|name| {
        let Ok(name) = std::ffi::CString::new(name) else {
            return false;
        };
        // SAFETY: a role lookup by a NUL-terminated name, missing_ok.
        unsafe { pg_sys::get_role_oid(name.as_ptr(), true) == role }
    })
}

/// The refusal of `function` as an error, with the rule in the hint.
pub fn refused(why: String) -> Error {
    Error::new(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, why).with_hint(
        "Queries written by llm_sql.ask run only built-in functions without side effects and \
         IMMUTABLE or STABLE functions owned by you, by a superuser or by a role named in \
         llm_sql.ask_trusted_roles.",
    )
}

/// Runs `f` with the rule enforced for every function that runs, as the current role's ask.
pub fn enforced<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    struct Leave(Option<Oid>);
    impl Drop for Leave {
        fn drop(&mut self) {
            CALLER.with(|c| c.set(self.0));
            DECIDED.with(|d| d.borrow_mut().clear());
        }
    }
    let _leave = Leave(CALLER.with(|c| c.replace(Some(current_user()))));
    f()
}

/// Runs `f`, then releases the session-level advisory locks that it took and that its
/// (rolled back) subtransaction left behind; locks held before are left alone.
pub fn releasing_locks<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let before = advisory_locks()?;
    let outcome = f();
    let after = advisory_locks()?;
    for lock in after.iter().filter(|lock| !before.contains(lock)) {
        let (classid, objid, objsubid, shared) = lock;
        let unlock = if *shared {
            "pg_catalog.pg_advisory_unlock_shared"
        } else {
            "pg_catalog.pg_advisory_unlock"
        };
        // objsubid 1: one bigint key (classid holds its high half); 2: two int4 keys.
        let sql = if *objsubid == 1 {
            format!("SELECT {unlock}(({classid}::int8 << 32) | {objid}::int8)")
        } else {
            format!("SELECT {unlock}({classid}::int4, {objid}::int4)")
        };
        while Spi::get_one::<bool>(&sql)? == Some(true) {}
    }
    outcome
}

/// The advisory locks this session holds: (classid, objid, objsubid, shared).
fn advisory_locks() -> Result<Vec<(i64, i64, i32, bool)>> {
    Ok(Spi::connect(|client| {
        let rows = client.select(
            "SELECT classid::int8, objid::int8, objsubid::int4, mode OPERATOR(pg_catalog.=) 'ShareLock'
               FROM pg_catalog.pg_locks
              WHERE locktype OPERATOR(pg_catalog.=) 'advisory' AND granted
                AND pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()",
            None,
            &[],
        )?;
        let mut locks = Vec::new();
        for row in rows {
            locks.push((
                row.get::<i64>(1)?.unwrap_or(0),
                row.get::<i64>(2)?.unwrap_or(0),
                row.get::<i32>(3)?.unwrap_or(0),
                row.get::<bool>(4)?.unwrap_or(false),
            ));
        }
        Ok::<_, pgrx::spi::Error>(locks)
    })?)
}

/// Postgres announces every function an expression is about to call (OAT_FUNCTION_EXECUTE).
#[pg_guard]
unsafe extern "C-unwind" fn object_access(
    access: pg_sys::ObjectAccessType::Type,
    class_id: Oid,
    object_id: Oid,
    sub_id: std::ffi::c_int,
    arg: *mut c_void,
) {
    // SAFETY: the previous hook is called with the arguments Postgres gave.
    unsafe {
        if let Some(previous) = PREVIOUS_OBJECT_ACCESS {
            #[allow(ffi_unwind_calls, reason = "guarded by pg_guard_ffi_boundary")]
            pg_sys::ffi::pg_guard_ffi_boundary(|| {
                previous(access, class_id, object_id, sub_id, arg)
            });
        }
    }
    if access != pg_sys::ObjectAccessType::OAT_FUNCTION_EXECUTE
        || class_id != pg_sys::ProcedureRelationId
    {
        return;
    }
    if let Some(Err(why)) = decision(object_id) {
        refused(why).report();
    }
}

/// Asked before a function other than a built-in one is called through the function manager,
/// and before the planner inlines an SQL function's body in place of the call (which no
/// announcement above would then see): a refused function gets the hook below instead.
#[pg_guard]
unsafe extern "C-unwind" fn needs_fmgr(function: Oid) -> bool {
    // SAFETY: the previous hook is called with the argument Postgres gave.
    #[allow(ffi_unwind_calls, reason = "guarded by pg_guard_ffi_boundary")]
    let previous = unsafe {
        PREVIOUS_NEEDS_FMGR
            .is_some_and(|previous| pg_sys::ffi::pg_guard_ffi_boundary(|| previous(function)))
    };
    previous || matches!(decision(function), Some(Err(_)))
}

/// Called as such a function starts: the refusal, wherever the call came from.
#[pg_guard]
unsafe extern "C-unwind" fn fmgr(
    event: pg_sys::FmgrHookEventType::Type,
    info: *mut pg_sys::FmgrInfo,
    private: *mut pg_sys::Datum,
) {
    // SAFETY: the previous hook is called with the arguments Postgres gave.
    unsafe {
        if let Some(previous) = PREVIOUS_FMGR {
            #[allow(ffi_unwind_calls, reason = "guarded by pg_guard_ffi_boundary")]
            pg_sys::ffi::pg_guard_ffi_boundary(|| previous(event, info, private));
        }
    }
    if event == pg_sys::FmgrHookEventType::FHET_START {
        // SAFETY: Postgres passes the FmgrInfo of the function being called.
        let function = unsafe { (*info).fn_oid };
        if let Some(Err(why)) = decision(function) {
            refused(why).report();
        }
    }
}

/// No utility statement (COPY, SET, DO, CREATE, …) runs while a model's query runs, not even
/// from the body of a function it may call. Called by the ProcessUtility hook.
pub fn check_utility(statement: *mut pg_sys::PlannedStmt) {
    if CALLER.with(|c| c.get()).is_some() {
        // SAFETY: the statement's node, to name it.
        let kind = unsafe {
            CStr::from_ptr(pg_sys::CreateCommandName((*statement).utilityStmt)).to_string_lossy()
        };
        refused(format!("{kind} does not run inside a query that ask runs")).report();
    }
}
