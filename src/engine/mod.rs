//! The binding to DuckDB's C API: the one doorway through which llm_sql reaches DuckDB.
//!
//! Owned handles for databases, connections, statements, results and values ([`ffi`]), their
//! types and conversion to Postgres datums and JSON ([`types`], [`convert`]), DuckDB's errors
//! as Postgres errors ([`errors`]), what a role may do in DuckDB ([`security`]), interrupting a
//! call ([`interrupt`]) and table functions written in Rust ([`table_function`]). Nothing
//! outside this folder names the C API (`scripts/check-layers` holds that); which DuckDB a
//! backend uses, and what it is composed with, is `crate::session`'s business.

pub mod convert;
pub mod errors;
pub mod ffi;
pub mod interrupt;
pub mod security;
pub mod table_function;
pub mod types;

use crate::error::{Error, Result};
use crate::settings;
use ffi::{Connection, Database};
use security::Profile;

/// `llm_sql.duckdb_extension_directory`, or `$libdir/llm_sql/duckdb_extensions`.
pub fn extension_directory() -> String {
    settings::string(&settings::DUCKDB_EXTENSION_DIRECTORY)
        .unwrap_or_else(|| format!("{}/llm_sql/duckdb_extensions", settings::pkglib_dir()))
}

/// Opens an in-memory DuckDB with its worker threads' signals blocked (see `crate::threads`).
pub fn open_database(options: &[(&str, String)]) -> Result<Database> {
    crate::threads::with_signals_blocked(|| Database::open_in_memory(options)).map_err(|e| {
        Error::from(e)
            .with_hint("Check the llm_sql.duckdb_* settings (SHOW llm_sql.duckdb_memory_limit, …).")
    })
}

/// A small throwaway DuckDB for llm_sql's own checks (testing a new attachment); user SQL never
/// runs in it.
pub struct Scratch {
    conn: Connection,
    _db: Database,
}

impl Scratch {
    pub fn open() -> Result<Scratch> {
        let extension_dir = extension_directory();
        let mut options = vec![
            ("threads", "1".to_string()),
            ("memory_limit", "64MB".to_string()),
            ("extension_directory", extension_dir.clone()),
        ];
        options.extend(security::duckdb_options(Profile::Superuser, &extension_dir));
        let db = open_database(&options)?;
        Ok(Scratch {
            conn: db.connect()?,
            _db: db,
        })
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }
}
