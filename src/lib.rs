//! llm_sql: ask questions of your data from inside PostgreSQL.
//!
//! `_PG_init` registers the settings; everything else starts lazily in the backend that needs
//! it (the DuckDB instance on the first DuckDB call).

// pgrx turns a Rust panic into a Postgres ERROR by unwinding to the guard of the SQL function;
// with panic = "abort" every panic would take the whole server down.
#[cfg(not(panic = "unwind"))]
compile_error!("llm_sql must be built with panic = \"unwind\" (see Cargo.toml's profiles)");

use pgrx::prelude::*;

/// Declares the record Postgres looks up (`pg_finfo_<symbol>`) to call a hand-written C
/// function with the version-1 calling convention.
macro_rules! finfo_v1 {
    ($finfo:ident) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn $finfo() -> &'static pgrx::pg_sys::Pg_finfo_record {
            const V1: pgrx::pg_sys::Pg_finfo_record =
                pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    };
}

mod api;
mod attach;
mod embeddings;
mod engine;
mod error;
mod executor;
mod llm;
mod local;
mod nl2sql;
mod plans;
mod procedure;
mod pushdown;
mod quote;
mod run_as;
mod session;
mod settings;
mod subxact;
mod threads;
mod utility;
mod worker;

// (pgrx 0.18.1's bare `version` key fills in the name field; the version is spelled out.)
::pgrx::pg_module_magic!(
    name,
    version = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()
    ) {
        Ok(version) => version,
        Err(_) => panic!("the crate version contains a NUL byte"),
    }
);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    settings::init();
    executor::duckdb_scan::init();
    attach::registry::init();
    nl2sql::sandbox::init();
    utility::init();
    worker::register();
}

pgrx::extension_sql!(
    r#"
-- The extension itself lives in pg_catalog (like PL/pgSQL); its two schemas are its members,
-- so DROP EXTENSION llm_sql leaves nothing behind.
CREATE SCHEMA llm_sql;
COMMENT ON SCHEMA llm_sql IS 'llm_sql: DuckDB, federated queries, LLM text-to-SQL and embeddings';
-- Every role may call llm_sql's functions; what they can do through them is limited by their
-- own privileges (see README, "Security model"). REVOKE EXECUTE on a function to restrict it.
GRANT USAGE ON SCHEMA llm_sql TO PUBLIC;
-- Functions only Postgres calls (triggers, the FDW, the planner): no role needs to see them.
CREATE SCHEMA llm_sql_internal;
REVOKE ALL ON SCHEMA llm_sql_internal FROM PUBLIC;
COMMENT ON SCHEMA llm_sql_internal IS 'llm_sql''s functions that only Postgres calls';
-- The rest of this script creates unqualified names (pgrx writes them so) in llm_sql. (SET
-- LOCAL ends with the script: CREATE EXTENSION restores its search_path.)
SELECT pg_catalog.set_config('search_path',
                             'llm_sql, ' || pg_catalog.current_setting('search_path'), true);
"#,
    name = "schema_usage",
    bootstrap,
);

#[cfg(any(test, feature = "pg_test"))]
mod tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        // As every cluster llm_sql runs in: preloaded, with the embedding worker. (Test
        // transactions never commit, so the worker does not see their queues.)
        vec![
            "shared_preload_libraries = 'llm_sql'",
            "llm_sql.worker_database = 'pgrx_tests'",
        ]
    }
}
