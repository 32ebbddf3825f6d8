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
//! * Functions that reach files, servers or SQL text on their own (the scanner extensions'
//!   `sqlite_scan`, `postgres_query`, …, and `query()`) are withdrawn from a non-superuser's
//!   instance: replaced in DuckDB's catalog by functions that refuse to bind.
//!
//! The file and function rules are enforced by DuckDB itself, so they hold for every statement
//! form (views, macros, CREATE TABLE AS, …). The statement rule uses the statement type that
//! DuckDB's own parser assigns, checked before the statement binds (binding already runs code).

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
        let user = crate::run_as::current_user();
        // SAFETY: catalog lookups on the backend thread.
        unsafe {
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
pub fn duckdb_options(profile: Profile, extension_dir: &str) -> Vec<(&'static str, String)> {
    let mut options = vec![
        // Never download anything: extensions come only from llm_sql's extension directory,
        // which is also the only repository INSTALL (superusers only) may install from.
        ("autoinstall_known_extensions", "false".to_string()),
        ("custom_extension_repository", extension_dir.to_string()),
        (
            "autoinstall_extension_repository",
            extension_dir.to_string(),
        ),
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

/// Applies the function and file system rules to a non-superuser's instance, then freezes its
/// configuration so that SQL cannot undo the limits. (File systems only exist once the
/// database is open.)
pub fn restrict(conn: &Connection, profile: Profile) -> Result<()> {
    if profile == Profile::Superuser {
        return Ok(());
    }
    withdraw_functions(conn, profile)?;
    if profile == Profile::Restricted {
        conn.run("SET disabled_filesystems = 'LocalFileSystem'")?;
    }
    conn.run("SET lock_configuration = true")?;
    Ok(())
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

/// Checks, before it binds, that the current role may run a statement of this type.
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

/// Part of the error message of a withdrawn function (src/engine/shim.cpp writes it).
pub const WITHDRAWN_MARK: &str = "is not available to this role through llm_sql";

/// Functions a non-superuser's DuckDB never offers: they reach files, servers or SQL text on
/// their own, around the rules above. The scanner extensions' table functions (`sqlite_scan`,
/// `postgres_scan`, `postgres_query`, `postgres_execute`, `mysql_query`, …: every table
/// function whose name starts with one of [`WITHDRAWN_PREFIXES`]) open any file or DSN given
/// to them, or send SQL text to an attached server past its READ_ONLY; `query` and friends run
/// SQL text that no check before it can see; the PEG parser switches change the parser under
/// a locked configuration. Attached databases stay readable by alias: their scans do not go
/// through these catalog entries.
const WITHDRAWN: &[&str] = &[
    "query",
    "query_table",
    "json_execute_serialized_sql",
    "json_serialize_plan",
    "enable_peg_parser",
    "disable_peg_parser",
    "pg_clear_cache",
    "read_postgres_binary",
];
const WITHDRAWN_PREFIXES: &[&str] = &["sqlite_", "postgres_", "mysql_"];

/// Withdraws the [`WITHDRAWN`] functions from a non-superuser's instance: each is replaced in
/// DuckDB's system catalog by one whose binding fails with a permission error, so no statement
/// form reaches it (a query, a view, a macro, CREATE TABLE AS, `system.main.name`, …). Runs when
/// the instance opens and again after an extension was loaded into it.
pub fn withdraw_functions(conn: &Connection, profile: Profile) -> Result<()> {
    if profile == Profile::Superuser {
        return Ok(());
    }
    let names = WITHDRAWN
        .iter()
        .map(|n| crate::quote::duck_literal(n))
        .collect::<Vec<_>>()
        .join(", ");
    let prefixes = WITHDRAWN_PREFIXES
        .iter()
        .map(|p| {
            format!(
                "starts_with(function_name, {})",
                crate::quote::duck_literal(p)
            )
        })
        .collect::<Vec<_>>()
        .join(" OR ");
    let found = conn.query_strings(&format!(
        "SELECT DISTINCT function_type || ':' || function_name FROM duckdb_functions() \
              WHERE database_name = 'system' AND function_type IN ('table', 'scalar') \
                AND (function_name IN ({names}) OR (function_type = 'table' AND ({prefixes})))"
    ))?;
    for entry in found.into_iter().flatten() {
        if let Some((kind, name)) = entry.split_once(':') {
            conn.withdraw_function(name, kind == "table")?;
        }
    }
    Ok(())
}

/// DuckDB's own syntax tree of `sql` (`json_serialize_sql`); `None` when DuckDB cannot
/// serialize it (only SELECT statements can be) or cannot parse it. Used to find the local
/// tables a query reads and to name attachments a role may not use; never for a security
/// decision (the statement types and withdrawn functions above are DuckDB's own checks).
pub fn syntax_tree(conn: &Connection, sql: &str) -> Result<Option<serde_json::Value>> {
    let serialized = conn.query_strings(&format!(
        "SELECT json_serialize_sql({})",
        crate::quote::duck_literal(sql)
    ))?;
    Ok(serialized
        .first()
        .and_then(|v| v.as_deref())
        .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok())
        .filter(|tree| tree["error"] == serde_json::Value::Bool(false)))
}

/// The values of `key` anywhere in DuckDB's serialized syntax tree.
fn values_of(node: &serde_json::Value, key: &str, out: &mut Vec<String>) {
    match node {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(value)) = map.get(key) {
                out.push(value.clone());
            }
            map.values().for_each(|v| values_of(v, key, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| values_of(v, key, out)),
        _ => {}
    }
}

/// The catalog and schema names a SELECT's syntax tree reads tables from, so that the caller
/// can name an attachment the role may not use (which is simply absent from its instance).
pub fn catalogs(tree: Option<&serde_json::Value>) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(tree) = tree {
        values_of(tree, "catalog_name", &mut names);
        values_of(tree, "schema_name", &mut names);
    }
    names
}
