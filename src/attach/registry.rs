//! Where attachments are remembered: persistent ones in `llm_sql.attachment_registry` (with
//! their grants in `llm_sql.attachment_grants`), session-only ones in this backend's memory.
//!
//! The registry holds DSNs with their passwords, so PUBLIC has no privilege on it; llm_sql reads
//! and writes it as the table's owner (the role that created the extension), on the backend
//! thread, and only ever hands out what the current role may see.
//!
//! Every backend keeps a generation number that moves whenever the registry, role memberships or
//! role attributes may have changed (cache invalidation callbacks, which Postgres delivers to all
//! backends at commit). A DuckDB instance re-synchronises its attachments when the number moved.

use std::cell::{Cell, RefCell};

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;

use super::dsn::Kind;
use crate::error::{Error, Result};
use crate::run_as::{as_extension_owner, as_owner_if_installed, llm_sql_table};

/// One attachment, password included (never shown: see `dsn::redact`).
#[derive(Clone, Debug)]
pub struct Entry {
    pub alias: String,
    pub kind: Kind,
    pub dsn: String,
    pub read_only: bool,
    pub persistent: bool,
    pub owner: Oid,
    pub created_at: Option<TimestampWithTimeZone>,
    pub grantees: Vec<Oid>,
}

impl Entry {
    /// Its owner (and members of the owner), superusers, and grantees (and their members).
    pub fn usable_by(&self, user: Oid) -> bool {
        // SAFETY: catalog lookups on the backend thread.
        unsafe {
            pg_sys::superuser_arg(user)
                || pg_sys::has_privs_of_role(user, self.owner)
                || self
                    .grantees
                    .iter()
                    .any(|g| pg_sys::has_privs_of_role(user, *g))
        }
    }

    /// Owner and superusers may drop it and grant it.
    pub fn managed_by(&self, user: Oid) -> bool {
        // SAFETY: catalog lookups on the backend thread.
        unsafe { pg_sys::superuser_arg(user) || pg_sys::has_privs_of_role(user, self.owner) }
    }

    /// Same database, same way: re-attaching is not needed.
    pub fn same_source(&self, other: &Entry) -> bool {
        self.kind == other.kind && self.dsn == other.dsn && self.read_only == other.read_only
    }
}

thread_local! {
    static SESSION: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    static GENERATION: Cell<u64> = const { Cell::new(1) };
    /// The registry's two tables, to recognise their invalidations.
    static TABLES: Cell<[Oid; 2]> = const { Cell::new([Oid::INVALID; 2]) };
}

pub fn generation() -> u64 {
    GENERATION.with(|g| g.get())
}

fn bump() {
    GENERATION.with(|g| g.set(g.get() + 1));
}

#[pg_guard]
unsafe extern "C-unwind" fn relcache_changed(_arg: pg_sys::Datum, relid: Oid) {
    if relid == Oid::INVALID || TABLES.with(|t| t.get().contains(&relid)) {
        bump();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn roles_changed(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    bump();
}

/// Registers the invalidation callbacks; called from `_PG_init`.
pub fn init() {
    // SAFETY: registering callbacks at library load, as Postgres expects.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(relcache_changed), pg_sys::Datum::from(0));
        for cache in [
            pg_sys::SysCacheIdentifier::AUTHMEMROLEMEM,
            pg_sys::SysCacheIdentifier::AUTHOID,
        ] {
            pg_sys::CacheRegisterSyscacheCallback(
                cache as i32,
                Some(roles_changed),
                pg_sys::Datum::from(0),
            );
        }
    }
}

/// The registry's table and the grants table; `None` before the extension's objects exist
/// (while CREATE EXTENSION runs, say). Remembered for [`changed`]'s invalidations.
fn registry_tables() -> Option<(Oid, Oid)> {
    let registry = llm_sql_table(c"attachment_registry")?.0;
    let grants = llm_sql_table(c"attachment_grants")?.0;
    TABLES.with(|t| t.set([registry, grants]));
    Some((registry, grants))
}

fn spi_error(e: pgrx::spi::Error) -> Error {
    Error::internal(format!("reading llm_sql's attachment registry failed: {e}"))
}

/// Every attachment: the persistent ones, then this session's.
pub fn all() -> Result<Vec<Entry>> {
    // Every backend reads the registry before using it: from then on it knows the tables'
    // invalidations (relcache_changed).
    registry_tables();
    let mut entries = as_owner_if_installed(|| {
        Spi::connect(|client| {
            let rows = client.select(
                "SELECT r.alias, r.type, r.dsn, r.read_only, r.owner, r.created_at, \
                        ARRAY(SELECT g.grantee::int8 FROM llm_sql.attachment_grants g \
                              WHERE g.alias = r.alias ORDER BY 1) \
                 FROM llm_sql.attachment_registry r ORDER BY r.alias",
                None,
                &[],
            )?;
            let mut entries = Vec::new();
            for row in rows {
                let kind: String = row.get(2)?.unwrap_or_default();
                let Ok(kind) = Kind::parse(&kind) else {
                    continue;
                };
                entries.push(Entry {
                    alias: row.get(1)?.unwrap_or_default(),
                    kind,
                    dsn: row.get(3)?.unwrap_or_default(),
                    read_only: row.get(4)?.unwrap_or(true),
                    persistent: true,
                    owner: row.get(5)?.unwrap_or(Oid::INVALID),
                    created_at: row.get(6)?,
                    grantees: row
                        .get::<Vec<i64>>(7)?
                        .unwrap_or_default()
                        .into_iter()
                        .map(|g| Oid::from(g as u32))
                        .collect(),
                });
            }
            Ok::<_, pgrx::spi::Error>(entries)
        })
        .map_err(spi_error)
    })?
    .unwrap_or_default();
    SESSION.with(|s| entries.extend(s.borrow().iter().cloned()));
    Ok(entries)
}

pub fn find(alias: &str) -> Result<Option<Entry>> {
    Ok(all()?.into_iter().find(|e| e.alias == alias))
}

/// Tells every backend (this one at once, the others at commit) that attachments changed.
fn changed() {
    bump();
    let Some((registry, grants)) = registry_tables() else {
        return;
    };
    for table in [registry, grants] {
        // SAFETY: queues a relcache invalidation of our own table, sent at commit.
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(table) };
    }
}

pub fn insert(entry: Entry) -> Result<()> {
    if !entry.persistent {
        SESSION.with(|s| s.borrow_mut().push(entry));
        bump();
        return Ok(());
    }
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO llm_sql.attachment_registry (alias, type, dsn, read_only, owner) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                entry.alias.as_str().into(),
                entry.kind.name().into(),
                entry.dsn.as_str().into(),
                entry.read_only.into(),
                entry.owner.into(),
            ],
        )
        .map_err(spi_error)
    })?;
    changed();
    Ok(())
}

pub fn delete(entry: &Entry) -> Result<()> {
    if !entry.persistent {
        SESSION.with(|s| s.borrow_mut().retain(|e| e.alias != entry.alias));
        bump();
        return Ok(());
    }
    as_extension_owner(|| {
        Spi::run_with_args(
            "DELETE FROM llm_sql.attachment_registry WHERE alias = $1",
            &[entry.alias.as_str().into()],
        )
        .map_err(spi_error)
    })?;
    changed();
    Ok(())
}

/// Adds (`grant`) or removes a grantee.
pub fn set_grant(entry: &Entry, grantee: Oid, grant: bool) -> Result<()> {
    if !entry.persistent {
        SESSION.with(|s| {
            if let Some(e) = s.borrow_mut().iter_mut().find(|e| e.alias == entry.alias) {
                e.grantees.retain(|g| *g != grantee);
                if grant {
                    e.grantees.push(grantee);
                }
            }
        });
        bump();
        return Ok(());
    }
    let sql = if grant {
        "INSERT INTO llm_sql.attachment_grants (alias, grantee) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM llm_sql.attachment_grants WHERE alias = $1 AND grantee = $2"
    };
    as_extension_owner(|| {
        Spi::run_with_args(sql, &[entry.alias.as_str().into(), grantee.into()]).map_err(spi_error)
    })?;
    changed();
    Ok(())
}

pgrx::extension_sql!(
    r#"
-- Attachments remembered across sessions. DSNs include passwords: no privilege for PUBLIC;
-- llm_sql reads the table as its owner and shows each role only what it may use, redacted.
CREATE TABLE llm_sql.attachment_registry (
    alias text PRIMARY KEY,
    type text NOT NULL CHECK (type IN ('sqlite', 'duckdb', 'postgres', 'mysql')),
    dsn text NOT NULL,
    read_only boolean NOT NULL,
    owner oid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE llm_sql.attachment_grants (
    alias text NOT NULL REFERENCES llm_sql.attachment_registry (alias) ON DELETE CASCADE,
    grantee oid NOT NULL,
    PRIMARY KEY (alias, grantee)
);
REVOKE ALL ON llm_sql.attachment_registry, llm_sql.attachment_grants FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('llm_sql.attachment_registry', '');
SELECT pg_catalog.pg_extension_config_dump('llm_sql.attachment_grants', '');
COMMENT ON TABLE llm_sql.attachment_registry IS
    'Attachments remembered across sessions (llm_sql''s owner only; see llm_sql.attachments())';
COMMENT ON TABLE llm_sql.attachment_grants IS
    'Roles that may use each remembered attachment (see grant_attachment)';
"#,
    name = "attachment_registry",
    requires = ["schema_usage"],
);
