//! What a role may do through DuckDB. Postgres decides; DuckDB enforces.
//!
//! * Superusers may do anything DuckDB can do.
//! * Other roles get a DuckDB whose configuration is locked right after it opens
//!   (`lock_configuration`), that cannot load or install extensions, and that refuses statements
//!   reaching outside the session (ATTACH, LOAD, SET, PRAGMA, …).
//! * The local file system is disabled (`disabled_filesystems`) unless the role is a member of
//!   both `pg_read_server_files` and `pg_write_server_files`. DuckDB cannot allow reading files
//!   without also allowing writes (EXPLAIN ANALYZE COPY, file logging, …), so, as in pg_duckdb,
//!   reading needs both. COPY and EXPORT DATABASE need the same.
//!
//! The file rule is enforced by DuckDB itself, so it holds for every function that touches files,
//! present or future. The statement rule uses the statement type that DuckDB's own parser
//! assigns, checked before the statement runs.

use duckdb::ffi;
use pgrx::pg_sys;

use super::ffi::Connection;
use crate::error::{Error, Result};

/// Why a role cannot use server files, for error details.
pub const FILES_RULE: &str = "Server files are available through DuckDB only to members of both \
pg_read_server_files and pg_write_server_files (DuckDB cannot allow reading without writing).";

/// The privilege level a DuckDB instance is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Superuser,
    /// Member of pg_read_server_files and pg_write_server_files: may use server files.
    Files,
    Restricted,
}

impl Profile {
    /// The level of the current user (which SET ROLE and SECURITY DEFINER functions change).
    pub fn current() -> Profile {
        // SAFETY: catalog lookups on the backend thread for the current user id.
        unsafe {
            let user = pg_sys::GetUserId();
            let member = |role: u32| pg_sys::has_privs_of_role(user, pg_sys::Oid::from(role));
            if pg_sys::superuser_arg(user) {
                Profile::Superuser
            } else if member(pg_sys::ROLE_PG_READ_SERVER_FILES)
                && member(pg_sys::ROLE_PG_WRITE_SERVER_FILES)
            {
                Profile::Files
            } else {
                Profile::Restricted
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Profile::Superuser => "superuser",
            Profile::Files => "files",
            Profile::Restricted => "restricted",
        }
    }
}

/// DuckDB settings applied when the instance opens, before any user SQL runs.
pub fn duckdb_options(profile: Profile) -> Vec<(&'static str, String)> {
    let mut options = vec![
        // Never download anything: extensions come only from llm_sql's extension directory.
        ("autoinstall_known_extensions", "false".to_string()),
        ("allow_community_extensions", "false".to_string()),
        ("allow_unsigned_extensions", "false".to_string()),
        // Secrets would be written, unencrypted, under the postgres OS user's home.
        ("allow_persistent_secrets", "false".to_string()),
    ];
    if profile != Profile::Superuser {
        // Loading an extension adds functions that open files and connections on their own
        // (sqlite_scan, postgres_scan, …), around DuckDB's file system rules.
        options.push(("autoload_known_extensions", "false".to_string()));
    }
    options
}

/// Applies the file system rule to a non-superuser's instance, then freezes its configuration
/// so that SQL cannot undo the limits. (File systems only exist once the database is open.)
pub fn restrict(conn: &Connection, profile: Profile) -> Result<()> {
    if profile == Profile::Superuser {
        return Ok(());
    }
    if profile == Profile::Restricted {
        super::run_internal(conn, "SET disabled_filesystems = 'LocalFileSystem'")?;
    }
    super::run_internal(conn, "SET lock_configuration = true")
}

fn statement_name(t: ffi::duckdb_statement_type) -> &'static str {
    match t {
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY => "COPY",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPORT => "EXPORT DATABASE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY_DATABASE => "COPY FROM DATABASE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ATTACH => "ATTACH",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DETACH => "DETACH",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_LOAD => "LOAD/INSTALL",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE_EXTENSIONS => "UPDATE EXTENSIONS",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SET => "SET/RESET",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VARIABLE_SET => "SET",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PRAGMA => "PRAGMA",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PREPARE => "PREPARE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXECUTE => "EXECUTE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXTENSION => "extension statements",
        _ => "this statement",
    }
}

/// Checks, before it runs, that the current role may run a statement of this type.
pub fn check_statement(profile: Profile, statement_type: ffi::duckdb_statement_type) -> Result<()> {
    if profile == Profile::Superuser {
        return Ok(());
    }
    match statement_type {
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SELECT
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_INSERT
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DELETE
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_MERGE_INTO
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE_FUNC
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DROP
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ALTER
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_TRANSACTION
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ANALYZE
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VACUUM
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CALL
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPLAIN
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_RELATION
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_LOGICAL_PLAN
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_MULTI => Ok(()),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPORT
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY_DATABASE => {
            if profile == Profile::Files {
                Ok(())
            } else {
                Err(Error::permission_denied(format!(
                    "permission denied to run DuckDB {} through llm_sql",
                    statement_name(statement_type)
                ))
                .with_detail(FILES_RULE)
                .with_hint("Ask a superuser to GRANT pg_read_server_files, pg_write_server_files TO your role."))
            }
        }
        other => Err(Error::permission_denied(format!(
            "permission denied to run DuckDB {} through llm_sql",
            statement_name(other)
        ))
        .with_detail("Only superusers may change DuckDB settings, load extensions or attach databases directly.")
        .with_hint("Attach databases with llm_sql.attach(); ask a superuser to change llm_sql.duckdb_* settings.")),
    }
}
