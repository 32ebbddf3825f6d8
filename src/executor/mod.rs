//! The Postgres executor's side of running DuckDB: the "DuckDB Scan" custom scan that streams
//! `llm_sql.query` in FROM ([`duckdb_scan`]), the foreign-data wrapper behind imported
//! attachments ([`fdw`]), DuckDB rows shaped into Postgres rows ([`rows`]) and the
//! materialize-mode set-returning function ([`srf`]). Only Postgres calls into here: planner
//! hooks, executor callbacks, and the SQL objects no role calls itself (in `llm_sql_internal`:
//! the FDW's handler and validator, `llm_sql.query`'s planner support function). The SQL
//! functions roles call are in `crate::api`.

pub mod duckdb_scan;
pub mod fdw;
pub mod rows;
pub mod srf;
