//! The attachments of this backend's DuckDB: the workflows behind `llm_sql.attach`, `detach`,
//! `attachments` and `import_schema`, which act on the caller's live instance, and [`sync`],
//! which runs when an instance opens and whenever the registry's generation moved, attaching
//! what is new and detaching what the role lost. Each instance carries exactly the attachments
//! its role may use.

use pgrx::PgSqlErrorCode;

use super::{Instance, Session};
use crate::attach::dsn::Kind;
use crate::attach::registry::{self, Entry};
use crate::attach::{attach_into, check_alias, check_may_attach, detach_from, test_source, usable};
use crate::engine::ffi::Connection;
use crate::engine::security::{self, Profile};
use crate::error::{Error, Result};
use crate::run_as::current_user;

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
    super::current()?;
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
    super::current()?;
    Ok(true)
}

/// The attachments the current role may see, for `llm_sql.attachments()`.
pub fn visible() -> Result<Vec<(Entry, bool)>> {
    let user = current_user();
    let attached = super::attached_aliases();
    Ok(registry::all()?
        .into_iter()
        .filter(|e| e.usable_by(user))
        .map(|e| {
            let here = attached.contains(&e.alias);
            (e, here)
        })
        .collect())
}

/// What [`sync`] found it cannot do in place.
pub enum Synced {
    Done,
    /// A restricted instance cannot load extensions or open DuckDB files once its file system
    /// is disabled: it must be reopened.
    NeedsReopen,
}

/// Brings `instance`'s attachments in line with what its role may use now. Failures to attach a
/// remembered source are WARNINGs: the other attachments keep working.
pub fn sync(instance: &Instance, conn: &Connection, opening: bool) -> Result<Synced> {
    let user = instance.user;
    let wanted: Vec<Entry> = registry::all()?
        .into_iter()
        .filter(|e| e.usable_by(user))
        .collect();
    let mut attached = instance.attached.borrow_mut();
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
        let restricted_later = !opening && instance.profile == Profile::Restricted;
        if restricted_later
            && (entry.kind == Kind::Duckdb
                || entry
                    .kind
                    .extension()
                    .is_some_and(|x| !instance.loaded_extensions.borrow().contains(x)))
        {
            return Ok(Synced::NeedsReopen);
        }
        match attach_into(conn, &entry) {
            Ok(_) => {
                if let Some(x) = entry.kind.extension() {
                    loaded |= instance.loaded_extensions.borrow_mut().insert(x);
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
        security::withdraw_functions(conn, instance.profile)?;
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
    let session = Session::open()?;
    if !session
        .instance
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
    let rows = session.conn().query_strings(
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
