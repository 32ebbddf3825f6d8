//! Attachments: outside databases (SQLite and DuckDB files, PostgreSQL and MySQL servers) that
//! llm_sql attaches to each role's DuckDB under an alias.
//!
//! Here: who may attach what, the registry of attachments ([`registry`]), testing a source in a
//! scratch DuckDB ([`test_source`]) and attaching one to a DuckDB connection ([`attach_into`]).
//! Which attachments a role's instance carries, and the SQL functions' workflows, are
//! `crate::session::attachments`.

pub mod dsn;
pub mod registry;
mod server;

use pgrx::pg_sys::{self, Oid};
use pgrx::PgSqlErrorCode;

use crate::engine::ffi::Connection;
use crate::engine::Scratch;
use crate::error::{Error, Result};
use crate::quote;
use crate::run_as::current_user;
use crate::settings;
use dsn::{Connect, Kind};
use registry::Entry;

/// Names the alias may not take: DuckDB's own catalogs and the ones llm_sql reserves.
const RESERVED: &[&str] = &[
    "memory",
    "system",
    "temp",
    "main",
    "pg",
    "pg_catalog",
    "information_schema",
    "llm_sql",
    "duckdb",
    "llm_sql_copies",
];

/// Whether llm_sql keeps `name` for itself: a reserved name, `pg_…`, or a catalog of its
/// columnar copies (`llm_sql_copies…`).
fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name) || name.starts_with("pg_") || name.starts_with("llm_sql_copies")
}

/// Checks an alias: `^[a-z_][a-z0-9_]{0,62}$`, not reserved, not an SQL keyword.
pub fn check_alias(alias: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::new(
            PgSqlErrorCode::ERRCODE_INVALID_NAME,
            format!("invalid attachment alias \"{alias}\": {why}"),
        )
        .with_hint("Use 1 to 63 lower-case letters, digits and underscores, starting with a letter or underscore.")
    };
    let mut chars = alias.chars();
    let well_formed = alias.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !well_formed {
        return Err(bad("it must match ^[a-z_][a-z0-9_]{0,62}$"));
    }
    if is_reserved(alias) {
        return Err(bad("the name is reserved"));
    }
    // Reserved words of Postgres's grammar (imported schemas are named after the alias).
    let keyword = pgrx::Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_get_keywords() WHERE word = $1 AND catcode IN ('R', 'T', 'C'))",
        &[alias.into()],
    )
    .map_err(|e| Error::internal(e.to_string()))?
    .unwrap_or(false);
    if keyword {
        return Err(bad("it is an SQL keyword"));
    }
    Ok(())
}

fn has_role(user: Oid, role: u32) -> bool {
    // SAFETY: catalog lookup on the backend thread.
    unsafe { pg_sys::has_privs_of_role(user, Oid::from(role)) }
}

/// Who may attach what: files need the server-file roles, servers need `llm_sql.attach_role`.
pub fn check_may_attach(kind: Kind, read_only: bool) -> Result<()> {
    let user = current_user();
    // SAFETY: catalog lookup on the backend thread.
    if unsafe { pg_sys::superuser_arg(user) } {
        return Ok(());
    }
    if kind.is_file() {
        if !has_role(user, pg_sys::ROLE_PG_READ_SERVER_FILES) {
            return Err(Error::permission_denied(format!(
                "permission denied to attach a {} file",
                kind.name()
            ))
            .with_detail("Attaching a server file needs membership in pg_read_server_files.")
            .with_hint("Ask a superuser to GRANT pg_read_server_files TO your role, or to attach it and grant it to you."));
        }
        if !read_only && !has_role(user, pg_sys::ROLE_PG_WRITE_SERVER_FILES) {
            return Err(Error::permission_denied(format!(
                "permission denied to attach a {} file read-write",
                kind.name()
            ))
            .with_detail("Attaching a server file read-write also needs membership in pg_write_server_files.")
            .with_hint("Attach it with read_only => true."));
        }
        return Ok(());
    }
    let role = settings::string(&settings::ATTACH_ROLE);
    let allowed = role.as_deref().is_some_and(|name| {
        let c = std::ffi::CString::new(name).unwrap_or_default();
        // SAFETY: get_role_oid with missing_ok on a NUL-terminated name.
        let oid = unsafe { pg_sys::get_role_oid(c.as_ptr(), true) };
        oid != Oid::INVALID && unsafe { pg_sys::has_privs_of_role(user, oid) }
    });
    if allowed {
        return Ok(());
    }
    Err(Error::permission_denied(format!(
        "permission denied to attach a {} server",
        kind.name()
    ))
    .with_detail(
        "Attaching a remote server needs superuser or membership in the role named by llm_sql.attach_role.",
    )
    .with_hint("Ask a superuser to attach it and grant it to you, or to set llm_sql.attach_role."))
}

/// `llm_sql.grant_attachment` / `llm_sql.revoke_attachment`.
pub fn set_grant(alias: &str, role: Oid, grant: bool) -> Result<()> {
    let entry = usable(alias)?;
    if !entry.managed_by(current_user()) {
        return Err(Error::permission_denied(format!(
            "must be owner of attachment \"{alias}\" to grant or revoke it"
        )));
    }
    registry::set_grant(&entry, role, grant)
}

fn permission_denied(alias: &str) -> Error {
    Error::permission_denied(format!("permission denied for attachment \"{alias}\""))
        .with_hint("Its owner can give you access with llm_sql.grant_attachment().")
}

/// Names a query reads from that are attachments the current role may not use: an error
/// that says so, instead of DuckDB's "does not exist".
/// Names that cannot be a forbidden attachment (reserved names, and the aliases `attached` in
/// the role's instance, which it may use) are skipped without reading the registry.
pub fn check_references(attached: &[String], names: &[String]) -> Result<()> {
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| !n.is_empty() && !is_reserved(n) && !attached.contains(n))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let user = current_user();
    for entry in registry::all()? {
        if unknown.contains(&&entry.alias) && !entry.usable_by(user) {
            return Err(permission_denied(&entry.alias));
        }
    }
    Ok(())
}

/// The entry for `alias` if the current role may use it; permission denied when it exists
/// but the role may not.
pub fn usable(alias: &str) -> Result<Entry> {
    match registry::find(alias)? {
        None => Err(not_found(alias)),
        Some(e) if e.usable_by(current_user()) => Ok(e),
        Some(_) => Err(permission_denied(alias)),
    }
}

pub fn not_found(alias: &str) -> Error {
    Error::new(
        PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
        format!("attachment \"{alias}\" does not exist"),
    )
    .with_hint("llm_sql.attachments() lists the attachments you may use.")
}

/// Tests a new source in a scratch DuckDB (never the one that runs user SQL), so that nothing
/// is remembered when it does not work. Returns how many tables it has.
///
/// For a MySQL server attached by a role that is not a superuser, also proves that the server
/// checks passwords: it must refuse the same login with a wrong one (see [`server`]).
pub fn test_source(entry: &Entry) -> Result<usize> {
    let scratch = Scratch::open()?;
    let tables = attach_into(scratch.conn(), entry)?;
    // SAFETY: catalog lookup on the backend thread.
    if entry.kind == Kind::Mysql && !unsafe { pg_sys::superuser_arg(entry.owner) } {
        let probe = Entry {
            alias: format!("{}_password_probe", entry.alias),
            ..entry.clone()
        };
        let mut random = [0u8; 16];
        // SAFETY: fills the buffer it is given with random bytes.
        unsafe { pg_sys::pg_strong_random(random.as_mut_ptr().cast(), random.len()) };
        let wrong: String = random.iter().map(|b| format!("{b:02x}")).collect();
        if attach_with_password(scratch.conn(), &probe, Some(&wrong)).is_ok() {
            return Err(server::accepted_wrong_password(&entry.alias));
        }
    }
    Ok(tables)
}

/// Attaches `entry` on `conn` (loading its extension first) and counts its tables, which also
/// proves the source is readable (SQLite opens files lazily).
pub fn attach_into(conn: &Connection, entry: &Entry) -> Result<usize> {
    attach_with_password(conn, entry, None)
}

/// [`attach_into`], with `password_override` in place of the DSN's password.
fn attach_with_password(
    conn: &Connection,
    entry: &Entry,
    password_override: Option<&str>,
) -> Result<usize> {
    let alias = &entry.alias;
    let mut password = None;
    let source = if entry.kind.is_file() {
        let meta = std::fs::metadata(&entry.dsn).map_err(|e| {
            Error::new(
                PgSqlErrorCode::ERRCODE_UNDEFINED_FILE,
                format!("cannot attach \"{alias}\": {}: {e}", entry.dsn),
            )
            .with_hint(
                "The path is read by the database server: give an absolute path on the server.",
            )
        })?;
        if !meta.is_file() {
            return Err(Error::new(
                PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
                format!("cannot attach \"{alias}\": {} is not a file", entry.dsn),
            ));
        }
        entry.dsn.clone()
    } else {
        let Connect {
            conninfo,
            password: p,
        } = dsn::split_password(entry.kind, &entry.dsn)?;
        password = password_override.map(str::to_string).or(p);
        let mut conninfo = server::connection_for(
            entry.kind,
            alias,
            &conninfo,
            password.as_deref(),
            entry.owner,
        )?;
        let timeout = settings::attach_timeout();
        if entry.kind == Kind::Postgres {
            let has_timeout = dsn::key_values(&conninfo)
                .is_some_and(|pairs| pairs.iter().any(|(k, _)| k == "connect_timeout"));
            if !has_timeout {
                conninfo.push_str(&format!(" connect_timeout={}", timeout.as_secs().max(2)));
            }
        }
        server::wait_for_answer(entry.kind, &conninfo, timeout)
            .map_err(|e| scrubbed(e, password.as_deref()))?;
        conninfo
    };
    let run = |sql: &str| {
        conn.run(sql)
            .map_err(|e| scrubbed(e.into(), password.as_deref()))
    };
    if let Some(extension) = entry.kind.extension() {
        run(&format!("LOAD {extension}"))?;
    }
    let mut options = vec![format!("TYPE {}", entry.kind.name())];
    if !entry.kind.is_file() {
        // Always an explicit secret (empty without a password): otherwise DuckDB looks for a
        // default one in persistent secret storage, which llm_sql disables.
        let secret = secret_name(alias);
        let password = password
            .as_deref()
            .map(|p| format!(", PASSWORD {}", quote::duck_literal(p)))
            .unwrap_or_default();
        run(&format!(
            "CREATE OR REPLACE TEMPORARY SECRET {secret} (TYPE {}{password})",
            entry.kind.name()
        ))?;
        options.push(format!("SECRET {secret}"));
    }
    if entry.read_only {
        options.push("READ_ONLY".into());
    }
    run(&format!(
        "ATTACH {} AS \"{alias}\" ({})",
        quote::duck_literal(&source),
        options.join(", ")
    ))
    .map_err(|e| {
        Error {
            message: format!("cannot attach \"{alias}\": {}", e.message),
            ..e
        }
        .with_hint("Check the DSN, that the source is reachable from the database server, and its credentials.")
    })?;
    let counted = conn
        .query_strings(&format!(
            "SELECT count(*)::VARCHAR FROM duckdb_tables() WHERE database_name = '{alias}'"
        ))
        .map_err(Error::from);
    match counted {
        Ok(rows) => Ok(rows
            .first()
            .and_then(|v| v.as_deref())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)),
        Err(e) => {
            let _ = detach_from(conn, alias);
            Err(Error {
                message: format!("cannot read attachment \"{alias}\": {}", e.message),
                ..scrubbed(e, password.as_deref())
            })
        }
    }
}

/// Detaches `alias` from `conn` and drops its secret.
pub fn detach_from(conn: &Connection, alias: &str) -> Result<()> {
    conn.run(&format!("DETACH DATABASE IF EXISTS \"{alias}\""))?;
    conn.run(&format!(
        "DROP TEMPORARY SECRET IF EXISTS {}",
        secret_name(alias)
    ))?;
    Ok(())
}

fn secret_name(alias: &str) -> String {
    format!("\"llm_sql_attachment_{alias}\"")
}

fn scrubbed(mut error: Error, password: Option<&str>) -> Error {
    error.message = dsn::scrub(&error.message, password);
    error.detail = error.detail.map(|d| dsn::scrub(&d, password));
    error
}
