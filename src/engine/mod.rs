//! The per-backend DuckDB.
//!
//! A backend opens its DuckDB on the first llm_sql call that needs it (never in the postmaster)
//! and keeps it for the session. The instance is tied to the privilege level it was opened for
//! ([`security::Profile`]): what the role may do with files is enforced by DuckDB's own settings,
//! fixed at open. When the current role's level changes (SET ROLE, a SECURITY DEFINER function),
//! the call runs in that level's own instance, so DuckDB state never leaks between levels.

pub mod convert;
pub mod ffi;
pub mod interrupt;
pub mod run;
pub mod security;
pub mod types;

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;

use pgrx::pg_sys;

use crate::error::{Error, Result};
use crate::settings;
use ffi::{Connection, Database};
use security::Profile;

pub struct Engine {
    // Field order matters: the connection must close before its database.
    conn: Connection,
    db: Database,
    pub profile: Profile,
    /// True while a statement runs on `conn`; a nested call then uses its own connection.
    busy: Cell<bool>,
    temp_dir: PathBuf,
}

thread_local! {
    /// The open instances of this backend, at most one per privilege level (normally one).
    static ENGINES: RefCell<Vec<Rc<Engine>>> = const { RefCell::new(Vec::new()) };
}

/// The DuckDB instance for the current role, opened on first use.
pub fn current() -> Result<Rc<Engine>> {
    let profile = Profile::current();
    if let Some(engine) =
        ENGINES.with(|e| e.borrow().iter().find(|e| e.profile == profile).cloned())
    {
        return Ok(engine);
    }
    let engine = Rc::new(Engine::open(profile)?);
    ENGINES.with(|e| e.borrow_mut().push(Rc::clone(&engine)));
    Ok(engine)
}

/// Drops every DuckDB instance of this backend; the next call opens a fresh one.
pub fn reset() {
    ENGINES.with(|e| e.borrow_mut().clear());
}

/// Forgets an instance that DuckDB reported as invalidated (FATAL/INTERNAL errors).
pub fn discard(engine: &Engine) {
    ENGINES.with(|e| {
        e.borrow_mut()
            .retain(|other| !std::ptr::eq(other.as_ref(), engine))
    });
}

/// A connection of the role's DuckDB to run one statement on, held while its rows are read.
pub struct Session {
    /// Set when the primary connection was busy (a nested call, e.g. a second llm_sql.query in
    /// the same SQL statement while the first one still streams); dropped before `engine`.
    extra: Option<Connection>,
    pub engine: Rc<Engine>,
}

impl Session {
    /// The primary connection, or a fresh one when a statement is already running on it.
    pub fn open() -> Result<Session> {
        let engine = current()?;
        let extra = if engine.busy.replace(true) {
            Some(engine.db.connect()?)
        } else {
            None
        };
        Ok(Session { extra, engine })
    }

    pub fn conn(&self) -> &Connection {
        self.extra.as_ref().unwrap_or(&self.engine.conn)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.extra.is_none() {
            self.engine.busy.set(false);
        }
    }
}

impl Engine {
    fn open(profile: Profile) -> Result<Engine> {
        let temp_dir = backend_temp_dir(profile)?;
        let extension_dir = settings::string(&settings::DUCKDB_EXTENSION_DIRECTORY)
            .unwrap_or_else(|| format!("{}/llm_sql/duckdb_extensions", settings::pkglib_dir()));
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
            ("extension_directory", extension_dir),
        ];
        options.extend(security::duckdb_options(profile));
        // DuckDB starts its worker threads while opening: they inherit a fully blocked signal
        // mask, so that Postgres's signal handlers only ever run on the backend thread.
        let db = interrupt::with_signals_blocked(|| Database::open_in_memory(&options)).map_err(
            |e| {
                Error::from(e).with_hint(
                    "Check the llm_sql.duckdb_* settings (SHOW llm_sql.duckdb_memory_limit, …).",
                )
            },
        )?;
        let conn = db.connect()?;
        // TimeZone needs the (built-in) ICU extension, which loads only once the database is up.
        run_internal(
            &conn,
            &format!(
                "SET TimeZone = '{}'",
                session_timezone().replace('\'', "''")
            ),
        )?;
        security::restrict(&conn, profile)?;
        Ok(Engine {
            conn,
            db,
            profile,
            busy: Cell::new(false),
            temp_dir,
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // DuckDB removes its own spill files; the per-backend directory is ours.
        let _ = std::fs::remove_dir_all(&self.temp_dir);
    }
}

/// Runs a statement of llm_sql's own (not user SQL) to completion.
fn run_internal(conn: &Connection, sql: &str) -> Result<()> {
    let statements = conn.extract(sql)?;
    for i in 0..statements.len() {
        statements.prepare(i)?.execute_streaming()?;
    }
    Ok(())
}

/// `<temp base>/pgsql_tmp_llm_sql_<pid>_<profile>`: one directory per backend and instance. The
/// `pgsql_tmp` prefix lets Postgres remove leftovers at restart when the default base is used.
fn backend_temp_dir(profile: Profile) -> Result<PathBuf> {
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
    Ok(base.join(format!("pgsql_tmp_llm_sql_{pid}_{}", profile.name())))
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
