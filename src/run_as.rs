//! Running a piece of work as another role, the way SECURITY DEFINER functions do.
//!
//! Used to read and write llm_sql's own tables as their owner (roles have no privilege on them)
//! and to let the embedding worker write as the role that set up auto-embedding, never as more.
//!
//! The work runs the way Postgres runs maintenance commands as a table's owner (VACUUM, index
//! builds): security-restricted, with a search_path of only `pg_catalog`, llm_sql's schema and
//! temporary objects last, and every setting it changed put back afterwards. So a function or
//! operator that the caller created in some schema on their search_path can never stand in for
//! a built-in one while the owner's rights are in force, and nothing the work runs (a trigger
//! on the caller's table, say) can leave a setting behind for the caller's session.

use pgrx::pg_sys::{self, Oid};

use crate::error::{Error, Result};

/// The search_path of every statement llm_sql runs with rights other than its caller's.
pub const PINNED_SEARCH_PATH: &std::ffi::CStr = c"pg_catalog, llm_sql, pg_temp";

/// Runs `f` as `role`, then switches back (also on error: Postgres restores the user at
/// (sub)transaction abort, and the guard does it when unwinding). Security-restricted, like a
/// SECURITY DEFINER function called from an index expression: no temp objects, no SET ROLE.
pub fn run_as<T>(role: Oid, f: impl FnOnce() -> T) -> T {
    struct Restore {
        user: Oid,
        context: i32,
        nest_level: i32,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: puts back the settings and the user saved below. When unwinding from a
            // Postgres error, the (sub)transaction abort that follows resets the settings of
            // this nesting level itself, so only the user is restored here.
            unsafe {
                if !std::thread::panicking() {
                    pg_sys::AtEOXact_GUC(false, self.nest_level);
                }
                pg_sys::SetUserIdAndSecContext(self.user, self.context);
            }
        }
    }
    let (mut user, mut context) = (Oid::INVALID, 0);
    // SAFETY: plain reads and writes of the backend's current user id, and a setting pushed on
    // a nesting level of its own (as a function's SET clause does).
    let _restore = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::SetUserIdAndSecContext(
            role,
            context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        let restore = Restore {
            user,
            context,
            nest_level: pg_sys::NewGUCNestLevel(),
        };
        pin_search_path(pg_sys::GucAction::GUC_ACTION_SAVE);
        restore
    };
    f()
}

/// Sets `search_path` to [`PINNED_SEARCH_PATH`]: `GUC_ACTION_SAVE` for the current nesting
/// level only, `GUC_ACTION_SET` for the rest of the session (the background worker).
///
/// # Safety
/// Must run on the backend thread inside a transaction.
pub unsafe fn pin_search_path(action: pg_sys::GucAction::Type) {
    // SAFETY: a built-in setting set to a valid value; errors are raised as Postgres ERRORs.
    unsafe {
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            PINNED_SEARCH_PATH.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            action,
            true,
            0,
            false,
        );
    }
}

/// The role running the current statement.
pub fn current_user() -> Oid {
    // SAFETY: reads the backend's current user id.
    unsafe { pg_sys::GetUserId() }
}

/// `llm_sql.<name>` and its owner, from the catalog caches (no SPI: the auto-embed trigger asks
/// for every row); `None` when it does not exist (while CREATE or DROP EXTENSION runs, say).
pub fn llm_sql_table(name: &std::ffi::CStr) -> Option<(Oid, Oid)> {
    // SAFETY: lookups by name that return InvalidOid when nothing is found; the relation is
    // opened from the relcache only to read its owner, and closed again.
    unsafe {
        let schema = pg_sys::get_namespace_oid(c"llm_sql".as_ptr(), true);
        if schema == Oid::INVALID {
            return None;
        }
        let table = pg_sys::get_relname_relid(name.as_ptr(), schema);
        if table == Oid::INVALID {
            return None;
        }
        let relation = pg_sys::RelationIdGetRelation(table);
        if relation.is_null() {
            return None;
        }
        let owner = (*(*relation).rd_rel).relowner;
        pg_sys::RelationClose(relation);
        Some((table, owner))
    }
}

/// The owner of llm_sql's tables (the registry, the embedding queue and jobs, the API key):
/// the role that created the extension. `None` when they are gone.
fn tables_owner() -> Option<Oid> {
    llm_sql_table(c"attachment_registry").map(|(_, owner)| owner)
}

/// Runs `f` as the owner of llm_sql's tables; `None` (without running it) when they are gone,
/// as while DROP EXTENSION llm_sql runs.
pub fn as_owner_if_installed<T>(f: impl FnOnce() -> Result<T>) -> Result<Option<T>> {
    let Some(owner) = tables_owner() else {
        return Ok(None);
    };
    Ok(Some(run_as(owner, f)?))
}

/// Runs `f` as the owner of llm_sql's tables.
pub fn as_extension_owner<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    as_owner_if_installed(f)?.ok_or_else(missing)
}

/// The owner of llm_sql's tables: the role that created the extension.
pub fn extension_owner() -> Result<Oid> {
    tables_owner().ok_or_else(missing)
}

fn missing() -> Error {
    Error::internal("llm_sql's tables are missing")
        .with_hint("Recreate the extension: DROP EXTENSION llm_sql; CREATE EXTENSION llm_sql;")
}
