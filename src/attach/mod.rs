//! Attachments: outside databases (SQLite and DuckDB files, PostgreSQL and MySQL servers) that
//! llm_sql attaches to each role's DuckDB under an alias.
//!
//! `llm_sql.attach` checks the caller's rights and the source (a real connection, in a scratch
//! DuckDB) before anything is remembered. Each DuckDB instance then carries exactly the
//! attachments its role may use: [`sync`] runs when an instance opens and whenever the
//! registry's generation moved, attaching what is new and detaching what the role lost.

pub mod dsn;
pub mod registry;
mod server;

use pgrx::pg_sys::{self, Oid};
use pgrx::PgSqlErrorCode;

use crate::engine::ffi::Connection;
use crate::engine::security::Profile;
use crate::engine::{self, Engine};
use crate::error::{Error, Result};
use crate::quote;
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
];

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
    if RESERVED.contains(&alias) || alias.starts_with("pg_") {
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

fn current_user() -> Oid {
    // SAFETY: reads the backend's current user id.
    unsafe { pg_sys::GetUserId() }
}

fn has_role(user: Oid, role: u32) -> bool {
    // SAFETY: catalog lookup on the backend thread.
    unsafe { pg_sys::has_privs_of_role(user, Oid::from(role)) }
}

/// Who may attach what: files need the server-file roles, servers need `llm_sql.attach_role`.
fn check_may_attach(kind: Kind, read_only: bool) -> Result<()> {
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

/// `llm_sql.attach`: checks, tests the connection, remembers, and attaches in this session.
pub fn attach(
    alias: &str,
    dsn: &str,
    kind: Option<&str>,
    read_only: bool,
    persist: bool,
) -> Result<serde_json::Value> {
    check_alias(alias)?;
    if dsn.trim().is_empty() {
        return Err(Error::invalid_parameter("the DSN is empty"));
    }
    let kind = match kind {
        Some(name) => Kind::parse(name)?,
        None => Kind::infer(dsn)?,
    };
    check_may_attach(kind, read_only)?;
    if registry::find(alias)?.is_some() {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
            format!("attachment \"{alias}\" already exists"),
        )
        .with_hint("Detach it first with llm_sql.detach(), or choose another alias."));
    }
    let entry = Entry {
        alias: alias.to_string(),
        kind,
        dsn: dsn.trim().to_string(),
        read_only,
        persistent: persist,
        owner: current_user(),
        created_at: None,
        grantees: Vec::new(),
    };
    let tables = test_source(&entry)?;
    registry::insert(entry)?;
    // Attach it in the caller's DuckDB now, so that errors show here and not on first use.
    engine::current()?;
    Ok(serde_json::json!({
        "status": "attached",
        "alias": alias,
        "type": kind.name(),
        "message": format!(
            "attached {} database \"{alias}\" ({}, {}) with {tables} table{}",
            kind.name(),
            if read_only { "read-only" } else { "read-write" },
            if persist { "persistent" } else { "this session only" },
            if tables == 1 { "" } else { "s" },
        ),
    }))
}

/// `llm_sql.detach`: forgets it everywhere; false when absent and `if_exists`.
pub fn detach(alias: &str, if_exists: bool) -> Result<bool> {
    let entry = match usable(alias) {
        Err(e) if if_exists && e.code == PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT => {
            return Ok(false)
        }
        other => other?,
    };
    if !entry.managed_by(current_user()) {
        return Err(Error::permission_denied(format!(
            "must be owner of attachment \"{alias}\" to detach it"
        )));
    }
    registry::delete(&entry)?;
    engine::current()?;
    Ok(true)
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
/// Names that cannot be a forbidden attachment (reserved names, and aliases `engine` already
/// attached, which its role may use) are skipped without reading the registry.
pub fn check_references(engine: &Engine, names: &[String]) -> Result<()> {
    let attached = engine.attached.borrow();
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| {
            !n.is_empty()
                && !RESERVED.contains(&n.as_str())
                && !attached.iter().any(|e| &e.alias == *n)
        })
        .collect();
    drop(attached);
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
fn usable(alias: &str) -> Result<Entry> {
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

/// The attachments the current role may see, for `llm_sql.attachments()`.
pub fn visible() -> Result<Vec<(Entry, bool)>> {
    let user = current_user();
    let attached = engine::attached_aliases();
    Ok(registry::all()?
        .into_iter()
        .filter(|e| e.usable_by(user))
        .map(|e| {
            let here = attached.contains(&e.alias);
            (e, here)
        })
        .collect())
}

/// Tests a new source in a scratch DuckDB (never the one that runs user SQL), so that nothing
/// is remembered when it does not work. Returns how many tables it has.
///
/// For a MySQL server attached by a role that is not a superuser, also proves that the server
/// checks passwords: it must refuse the same login with a wrong one (see [`server`]).
fn test_source(entry: &Entry) -> Result<usize> {
    let scratch = engine::Scratch::open()?;
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
    let run =
        |sql: &str| engine::run_internal(conn, sql).map_err(|e| scrubbed(e, password.as_deref()));
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
    let counted = engine::query_strings(
        conn,
        &format!("SELECT count(*)::VARCHAR FROM duckdb_tables() WHERE database_name = '{alias}'"),
    );
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
    engine::run_internal(conn, &format!("DETACH DATABASE IF EXISTS \"{alias}\""))?;
    engine::run_internal(
        conn,
        &format!("DROP TEMPORARY SECRET IF EXISTS {}", secret_name(alias)),
    )
}

fn secret_name(alias: &str) -> String {
    format!("\"llm_sql_attachment_{alias}\"")
}

fn scrubbed(mut error: Error, password: Option<&str>) -> Error {
    error.message = dsn::scrub(&error.message, password);
    error.detail = error.detail.map(|d| dsn::scrub(&d, password));
    error
}

/// What [`sync`] found it cannot do in place.
pub enum Synced {
    Done,
    /// A restricted instance cannot load extensions or open DuckDB files once its file system
    /// is disabled: it must be reopened.
    NeedsReopen,
}

/// Brings `engine`'s attachments in line with what its role may use now. Failures to attach a
/// remembered source are WARNINGs: the other attachments keep working.
pub fn sync(engine: &Engine, conn: &Connection, opening: bool) -> Result<Synced> {
    let user = engine.user;
    let wanted: Vec<Entry> = registry::all()?
        .into_iter()
        .filter(|e| e.usable_by(user))
        .collect();
    let mut attached = engine.attached.borrow_mut();
    let stale: Vec<String> = attached
        .iter()
        .filter(|have| {
            !wanted
                .iter()
                .any(|w| w.alias == have.alias && w.same_source(have))
        })
        .map(|have| have.alias.clone())
        .collect();
    for alias in stale {
        detach_from(conn, &alias)?;
        attached.retain(|e| e.alias != alias);
    }
    // An extension loaded now brings its functions along: a non-superuser's instance withdraws
    // them again (when opening, `security::restrict` does it once everything is attached).
    let mut loaded = false;
    for entry in wanted {
        if attached.iter().any(|e| e.alias == entry.alias) {
            continue;
        }
        let restricted_later = !opening && engine.profile == Profile::Restricted;
        if restricted_later
            && (entry.kind == Kind::Duckdb
                || entry
                    .kind
                    .extension()
                    .is_some_and(|x| !engine.loaded_extensions.borrow().contains(x)))
        {
            return Ok(Synced::NeedsReopen);
        }
        match attach_into(conn, &entry) {
            Ok(_) => {
                if let Some(x) = entry.kind.extension() {
                    loaded |= engine.loaded_extensions.borrow_mut().insert(x);
                }
                attached.push(entry);
            }
            Err(e) => pgrx::warning!(
                "llm_sql: attachment \"{}\" is not available in this session: {}",
                entry.alias,
                e.message
            ),
        }
    }
    if loaded && !opening {
        crate::engine::security::withdraw_functions(conn, engine.profile)?;
    }
    Ok(Synced::Done)
}

/// Schemas of attached servers that hold their system catalogs, not user tables.
const SYSTEM_SCHEMAS: &str =
    "'information_schema', 'pg_catalog', 'pg_toast', 'mysql', 'performance_schema', 'sys'";

/// For `llm_sql.import_schema`: the attachment's tables and views as (schema, name), system
/// schemas left out. Only its owner (or a superuser) may import it.
pub fn tables_to_import(alias: &str) -> Result<Vec<(String, String)>> {
    let entry = usable(alias)?;
    if !entry.managed_by(current_user()) {
        return Err(Error::permission_denied(format!(
            "must be owner of attachment \"{alias}\" to import it"
        ))
        .with_hint("Its owner can import it and GRANT SELECT on the imported relations."));
    }
    let session = engine::Session::open()?;
    if !session
        .engine
        .attached
        .borrow()
        .iter()
        .any(|e| e.alias == alias)
    {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_CONNECTION_FAILURE,
            format!("attachment \"{alias}\" is not available in this session"),
        )
        .with_hint("The WARNING when this session's DuckDB opened says why; llm_sql.detach() and llm_sql.attach() it again."));
    }
    let rows = engine::query_strings(
        session.conn(),
        &format!(
            "SELECT schema_name || chr(31) || table_name FROM duckdb_tables() \
               WHERE database_name = '{alias}' AND schema_name NOT IN ({SYSTEM_SCHEMAS}) \
             UNION \
             SELECT schema_name || chr(31) || view_name FROM duckdb_views() \
               WHERE database_name = '{alias}' AND NOT internal AND schema_name NOT IN ({SYSTEM_SCHEMAS}) \
             ORDER BY 1"
        ),
    )?;
    Ok(rows
        .into_iter()
        .flatten()
        .filter_map(|row| {
            row.split_once('\u{1f}')
                .map(|(s, t)| (s.to_string(), t.to_string()))
        })
        .collect())
}
