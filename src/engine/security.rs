//! What a role may do through DuckDB. Postgres decides; DuckDB enforces.
//!
//! * Superusers may do anything DuckDB can do.
//! * Other roles get a DuckDB whose configuration is locked at open (`lock_configuration`), with
//!   the local file system disabled unless they are members of `pg_read_server_files`, no
//!   extension loading or installing, and no statements that reach outside the session except
//!   COPY/EXPORT for members of `pg_write_server_files`.
//!
//! The file rule is enforced by DuckDB itself (`disabled_filesystems`), so it holds for every
//! function that reads files, present or future. The statement rule uses the statement type that
//! DuckDB's own parser assigns; it is checked before a statement runs.

use duckdb::ffi;
use pgrx::pg_sys;

use super::ffi::Connection;
use crate::error::{Error, Result};

/// The privilege level a DuckDB instance is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub superuser: bool,
    pub read_files: bool,
    pub write_files: bool,
}

impl Profile {
    /// The level of the current user (which SET ROLE and SECURITY DEFINER functions change).
    pub fn current() -> Profile {
        // SAFETY: catalog lookups on the backend thread for the current user id.
        unsafe {
            let user = pg_sys::GetUserId();
            if pg_sys::superuser_arg(user) {
                return Profile {
                    superuser: true,
                    read_files: true,
                    write_files: true,
                };
            }
            Profile {
                superuser: false,
                read_files: pg_sys::has_privs_of_role(
                    user,
                    pg_sys::Oid::from(pg_sys::ROLE_PG_READ_SERVER_FILES),
                ),
                write_files: pg_sys::has_privs_of_role(
                    user,
                    pg_sys::Oid::from(pg_sys::ROLE_PG_WRITE_SERVER_FILES),
                ),
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match (self.superuser, self.read_files, self.write_files) {
            (true, _, _) => "superuser",
            (false, true, true) => "files_rw",
            (false, true, false) => "files_r",
            (false, false, true) => "files_w",
            (false, false, false) => "restricted",
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
    if !profile.superuser {
        // Loading an extension adds functions that open files and connections on their own
        // (sqlite_scan, postgres_scan, …), around DuckDB's file system rules.
        options.push(("autoload_known_extensions", "false".to_string()));
        if !profile.read_files {
            options.push(("disabled_filesystems", "LocalFileSystem".to_string()));
        }
    }
    options
}

/// Freezes the configuration of a non-superuser's instance, so SQL cannot undo the limits.
pub fn lock(conn: &Connection, profile: Profile) -> Result<()> {
    if profile.superuser {
        return Ok(());
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
    if profile.superuser {
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
            if profile.write_files && profile.read_files {
                Ok(())
            } else {
                Err(Error::permission_denied(format!(
                    "permission denied to run DuckDB {} through llm_sql",
                    statement_name(statement_type)
                ))
                .with_detail("Reading and writing server files through DuckDB needs membership in pg_read_server_files and pg_write_server_files.")
                .with_hint("Ask a superuser to GRANT pg_write_server_files, pg_read_server_files TO your role."))
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
