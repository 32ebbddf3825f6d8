//! This backend's DuckDB: the instance each role gets, and what it is composed with.
//!
//! A backend opens its DuckDB on the first llm_sql call that needs it (never in the postmaster)
//! and keeps it for the session. The instance belongs to one role and to the privilege level it
//! was opened for ([`Profile`]): what the role may do with files is enforced by DuckDB's own
//! settings, fixed at open, and it carries only the attachments that role may use ([`attachments`]).
//! When the current role changes (SET ROLE, a SECURITY DEFINER function), the call runs in that
//! role's own instance, so DuckDB state never leaks between roles.
//!
//! Opening composes the binding (`crate::engine`) with the local tables as catalog `pg`
//! (`crate::local`) and the attachments (`crate::attach`); [`run`] runs user statements on it.

pub mod attachments;
pub mod run;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::path::PathBuf;
use std::rc::Rc;

use pgrx::pg_sys::{self, Oid};

use crate::attach::registry;
use crate::engine::ffi::{Connection, Database};
use crate::engine::security::{self, Profile};
use crate::engine::{extension_directory, open_database};
use crate::error::{Error, Result};
use crate::run_as::current_user;
use crate::settings;
use attachments::Synced;

pub struct Instance {
    // Field order matters: the connection must close before its database.
    conn: Connection,
    db: Database,
    pub profile: Profile,
    /// The role this instance belongs to: its attachments are the ones this role may use.
    pub user: Oid,
    pub attached: RefCell<Vec<registry::Entry>>,
    pub loaded_extensions: RefCell<HashSet<&'static str>>,
    /// The registry generation the attachments were last synchronised with.
    synced: Cell<u64>,
    /// True while a statement runs on `conn`; a nested call then uses its own connection.
    busy: Cell<bool>,
    /// Columnar copies of local tables kept in this instance.
    pub copies: crate::local::copy::Copies,
    temp_dir: PathBuf,
}

thread_local! {
    /// The open instances of this backend, one per role that used DuckDB (normally one).
    static INSTANCES: RefCell<Vec<Rc<Instance>>> = const { RefCell::new(Vec::new()) };
}

/// The current role's instance if it is open.
fn find(profile: Profile, user: Oid) -> Option<Rc<Instance>> {
    INSTANCES.with(|e| {
        e.borrow()
            .iter()
            .find(|e| e.profile == profile && e.user == user)
            .cloned()
    })
}

/// Closes every instance when the backend exits, while the DuckDB extensions' code is still
/// mapped: left to thread-local destructors at `exit()`, closing could run after the loaded
/// extensions' own static destructors and abort the process.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn close_at_exit(_code: i32, _arg: pg_sys::Datum) {
    reset();
}

fn open_and_keep(profile: Profile, user: Oid) -> Result<Rc<Instance>> {
    thread_local! {
        static EXIT_HOOK: Cell<bool> = const { Cell::new(false) };
    }
    if !EXIT_HOOK.with(|hook| hook.replace(true)) {
        // SAFETY: registers a callback for this backend's proc_exit (not in the postmaster:
        // instances never open there).
        unsafe { pg_sys::on_proc_exit(Some(close_at_exit), pg_sys::Datum::from(0)) };
    }
    let instance = Rc::new(Instance::open(profile, user)?);
    INSTANCES.with(|e| e.borrow_mut().push(Rc::clone(&instance)));
    Ok(instance)
}

/// The DuckDB instance for the current role, opened on first use, with the attachments the
/// role may use now.
pub fn current() -> Result<Rc<Instance>> {
    let (profile, user) = (Profile::current(), current_user());
    let Some(instance) = find(profile, user) else {
        return open_and_keep(profile, user);
    };
    let generation = registry::generation();
    if instance.busy.get() || instance.synced.get() == generation {
        return Ok(instance);
    }
    match attachments::sync(&instance, &instance.conn, false)? {
        Synced::Done => {
            instance.synced.set(generation);
            Ok(instance)
        }
        Synced::NeedsReopen => {
            discard(&instance);
            drop(instance);
            pgrx::notice!(
                "llm_sql: this session's DuckDB was reopened to add an attachment (its DuckDB temporary tables were dropped)"
            );
            open_and_keep(profile, user)
        }
    }
}

/// Aliases attached in the current role's instance, without opening one.
pub fn attached_aliases() -> Vec<String> {
    find(Profile::current(), current_user())
        .map(|instance| instance.attached_aliases())
        .unwrap_or_default()
}

/// Drops every DuckDB instance of this backend; the next call opens a fresh one.
pub fn reset() {
    INSTANCES.with(|e| e.borrow_mut().clear());
}

/// Forgets an instance that DuckDB reported as invalidated (FATAL/INTERNAL errors).
pub fn discard(instance: &Instance) {
    INSTANCES.with(|e| {
        e.borrow_mut()
            .retain(|other| !std::ptr::eq(other.as_ref(), instance))
    });
}

/// A connection of the role's DuckDB to run one statement on, held while its rows are read.
pub struct Session {
    /// The current statement reads local tables (catalog `pg`): DuckDB calls then run on a
    /// helper thread while the backend thread serves the rows.
    pub serving_local_scans: Cell<bool>,
    /// Set when the primary connection was busy (a nested call, e.g. a second llm_sql.query in
    /// the same SQL statement while the first one still streams); dropped before `instance`.
    extra: Option<Connection>,
    pub instance: Rc<Instance>,
}

impl Session {
    /// The primary connection, or a fresh one when a statement is already running on it.
    pub fn open() -> Result<Session> {
        let instance = current()?;
        let extra = if instance.busy.replace(true) {
            Some(instance.db.connect()?)
        } else {
            None
        };
        Ok(Session {
            serving_local_scans: Cell::new(false),
            extra,
            instance,
        })
    }

    pub fn conn(&self) -> &Connection {
        self.extra.as_ref().unwrap_or(&self.instance.conn)
    }

    /// Whether another statement of this instance is running (this one is nested in it).
    pub fn nested(&self) -> bool {
        self.extra.is_some()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.extra.is_none() {
            self.instance.busy.set(false);
        }
    }
}

impl Instance {
    fn open(profile: Profile, user: Oid) -> Result<Instance> {
        Self::open_with(profile, user, true)
    }

    /// An instance of llm_sql's own for the current role, outside the backend's cache and
    /// without attachments (no connections to other servers): the background worker's, to
    /// refresh stored copies. No user SQL runs in it.
    pub fn open_private() -> Result<Instance> {
        Self::open_with(Profile::current(), current_user(), false)
    }

    /// Its connection, for llm_sql's own statements.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn open_with(profile: Profile, user: Oid, with_attachments: bool) -> Result<Instance> {
        let temp_dir = backend_temp_dir(profile, user)?;
        let options = duckdb_options(profile, &temp_dir);
        let db = open_database(&options)?;
        let conn = db.connect()?;
        // TimeZone needs the (built-in) ICU extension, which loads only once the database is up.
        conn.run(&format!(
            "SET TimeZone = {}",
            crate::quote::duck_literal(&session_timezone())
        ))?;
        let instance = Instance {
            conn,
            db,
            profile,
            user,
            attached: RefCell::new(Vec::new()),
            loaded_extensions: RefCell::new(HashSet::new()),
            synced: Cell::new(registry::generation()),
            busy: Cell::new(false),
            copies: Default::default(),
            temp_dir,
        };
        // Attachments first: a restricted instance cannot load extensions or open DuckDB files
        // once its file system is disabled.
        crate::local::install(
            &instance.conn,
            &instance.copies,
            profile != Profile::Restricted,
        )?;
        if with_attachments {
            attachments::sync(&instance, &instance.conn, true)?;
        }
        security::restrict(&instance.conn, profile)?;
        Ok(instance)
    }
}

/// The options a DuckDB instance opens with: the llm_sql.duckdb_* settings and the rules of
/// `profile` that must hold from the start.
fn duckdb_options(profile: Profile, temp_dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let extension_dir = extension_directory();
    let mut options: Vec<(&str, String)> = vec![
        (
            "memory_limit",
            settings::string(&settings::DUCKDB_MEMORY_LIMIT).unwrap_or_else(|| "128MB".into()),
        ),
        ("threads", settings::DUCKDB_THREADS.get().to_string()),
        ("temp_directory", temp_dir.to_string_lossy().into_owned()),
        (
            "max_temp_directory_size",
            settings::string(&settings::DUCKDB_MAX_TEMP_DIRECTORY_SIZE)
                .unwrap_or_else(|| "1GB".into()),
        ),
        ("extension_directory", extension_dir.clone()),
    ];
    options.extend(security::duckdb_options(profile, &extension_dir));
    options
}

impl Instance {
    /// Options for another DuckDB instance llm_sql opens for this one's role, for its own
    /// statements only (the writer of a stored copy).
    pub fn duckdb_options(&self) -> Vec<(&'static str, String)> {
        duckdb_options(self.profile, &self.temp_dir)
    }

    /// The aliases attached in this instance.
    pub fn attached_aliases(&self) -> Vec<String> {
        self.attached
            .borrow()
            .iter()
            .map(|a| a.alias.clone())
            .collect()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // DuckDB removes its own spill files; the per-backend directory is ours.
        let _ = std::fs::remove_dir_all(&self.temp_dir);
    }
}

/// `<temp base>/pgsql_tmp_llm_sql_<pid>_<profile>_<role>`: one directory per backend and
/// instance. The `pgsql_tmp` prefix lets Postgres remove leftovers at restart when the default
/// base is used.
fn backend_temp_dir(profile: Profile, user: Oid) -> Result<PathBuf> {
    let base = match settings::string(&settings::DUCKDB_TEMP_DIRECTORY) {
        Some(dir) => PathBuf::from(dir),
        None => {
            // SAFETY: DataDir is the absolute data directory path, set before any backend runs.
            let data_dir = unsafe { std::ffi::CStr::from_ptr(pg_sys::DataDir) };
            PathBuf::from(data_dir.to_string_lossy().into_owned()).join("base/pgsql_tmp")
        }
    };
    // DuckDB creates its own directory when it first spills, but not missing parents
    // (base/pgsql_tmp only exists once Postgres itself has spilled).
    std::fs::create_dir_all(&base).map_err(|e| {
        Error::new(
            pgrx::PgSqlErrorCode::ERRCODE_IO_ERROR,
            format!(
                "could not create DuckDB's temporary directory {}: {e}",
                base.display()
            ),
        )
        .with_hint("Check llm_sql.duckdb_temp_directory.")
    })?;
    // SAFETY: MyProcPid is set at backend start.
    let pid = unsafe { pg_sys::MyProcPid };
    Ok(base.join(format!(
        "pgsql_tmp_llm_sql_{pid}_{}_{}",
        profile.name(),
        u32::from(user)
    )))
}

/// The session's TimeZone, so DuckDB's timestamptz functions agree with Postgres's.
fn session_timezone() -> String {
    // SAFETY: session_timezone is always set in a backend; the name is a static C string.
    unsafe {
        let name = pg_sys::pg_get_timezone_name(pg_sys::session_timezone);
        if name.is_null() {
            "UTC".to_string()
        } else {
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        }
    }
}
