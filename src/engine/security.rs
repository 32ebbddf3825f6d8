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

/// Functions that reach files or servers on their own (the scanner extensions' `sqlite_scan`,
/// `postgres_scan`, `postgres_query`, `mysql_execute`, …) or run SQL built at run time, where
/// no check can see it. Attached databases are read by alias instead.
fn denied_function(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["sqlite_", "postgres_", "mysql_"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || matches!(name.as_str(), "query" | "json_execute_serialized_sql")
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

/// Names written as calls (`name (`, comments allowed before the parenthesis) anywhere in the
/// text, string literals included: a conservative scan for statements DuckDB cannot serialize.
fn called_names(sql: &str) -> Vec<String> {
    let text = sql.to_ascii_lowercase().replace('"', "");
    let bytes = text.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut names = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_ident(bytes[i]) || (i > 0 && is_ident(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        let mut j = i;
        loop {
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            if text[j..].starts_with("/*") {
                j = text[j + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |k| j + 2 + k + 2);
            } else if text[j..].starts_with("--") {
                j = text[j..].find('\n').map_or(bytes.len(), |k| j + k);
            } else {
                break;
            }
        }
        if j < bytes.len() && bytes[j] == b'(' {
            names.push(text[start..i].to_string());
        }
    }
    names
}

/// DuckDB's own syntax tree of `sql` (`json_serialize_sql`); `None` when DuckDB cannot
/// serialize it (only SELECT statements can be) or cannot parse it.
pub fn syntax_tree(conn: &Connection, sql: &str) -> Result<Option<serde_json::Value>> {
    let serialized = super::query_strings(
        conn,
        &format!(
            "SELECT json_serialize_sql({})",
            crate::quote::duck_literal(sql)
        ),
    )?;
    Ok(serialized
        .first()
        .and_then(|v| v.as_deref())
        .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok())
        .filter(|tree| tree["error"] == serde_json::Value::Bool(false)))
}

/// Refuses, for non-superusers, SQL that calls a [`denied_function`]. SELECT statements are
/// checked on their syntax `tree` ([`syntax_tree`]); other statements, which DuckDB cannot
/// serialize, by a conservative scan of the text. Returns the catalog and schema names the
/// SELECTs read tables from (empty for superusers), so that the caller can name an attachment
/// the role may not use.
pub fn check_functions(
    profile: Profile,
    sql: &str,
    tree: Option<&serde_json::Value>,
) -> Result<Vec<String>> {
    if profile == Profile::Superuser {
        return Ok(Vec::new());
    }
    let (mut names, mut catalogs) = (Vec::new(), Vec::new());
    match tree {
        Some(tree) => {
            values_of(tree, "function_name", &mut names);
            values_of(tree, "catalog_name", &mut catalogs);
            values_of(tree, "schema_name", &mut catalogs);
        }
        None => names = called_names(sql),
    }
    match names.into_iter().find(|n| denied_function(n)) {
        None => Ok(catalogs),
        Some(name) => Err(Error::permission_denied(format!(
            "permission denied for DuckDB function {name} through llm_sql"
        ))
        .with_detail(
            "It reaches files, servers or dynamic SQL directly, around llm_sql's attachment and file rules; only superusers may call it.",
        )
        .with_hint("Attach databases with llm_sql.attach() and query them by alias.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_calls_in_text() {
        assert_eq!(
            called_names("INSERT INTO t SELECT * FROM \"SQLite_Scan\" /* x */ ('a', 'b')"),
            vec!["sqlite_scan"]
        );
        assert_eq!(
            called_names("create macro m() as table from query --c\n (x)"),
            // (Conservative: a name in a comment counts too.)
            vec!["m", "query", "c"]
        );
        assert!(called_names("INSERT INTO postgres_stuff SELECT query FROM t").is_empty());
        assert!(denied_function("POSTGRES_SCAN"));
        assert!(denied_function("mysql_query"));
        assert!(!denied_function("query_table"));
        assert!(!denied_function("read_csv"));
    }
}
