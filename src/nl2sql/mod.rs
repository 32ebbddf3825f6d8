//! Text to SQL (`llm_sql.ask` and friends): finding the SQL in a model's reply (`extract`),
//! deciding whether it may run (`guard`), and running it with the caller's rights, read-only,
//! under a time limit and a row cap (`run`): in DuckDB when it reads only attachments and
//! DuckDB computes it exactly as Postgres would (`crate::pushdown`), otherwise in Postgres.

pub mod ask;
pub mod context;
pub mod extract;
pub mod guard;
mod history;
pub mod prompt;
pub mod repair;
pub mod sandbox;
pub mod values;

use std::time::Duration;

use pgrx::datum::JsonB;
use pgrx::prelude::*;
use serde_json::Value;

use crate::error::Result;
use crate::quote::{ident, unique};
use crate::subxact::{self, OnSuccess};

/// Where a query ran.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RanIn {
    Postgres,
    DuckDb,
}

impl RanIn {
    pub fn name(self) -> &'static str {
        match self {
            RanIn::Postgres => "postgres",
            RanIn::DuckDb => "duckdb",
        }
    }
}

/// The rows of an answer, each a JSON object keyed by column name.
pub struct Rows {
    pub rows: Vec<Value>,
    /// More rows than the cap existed.
    pub truncated: bool,
    pub ran_in: RanIn,
}

impl Rows {
    fn capped(mut rows: Vec<Value>, max_rows: usize, ran_in: RanIn) -> Rows {
        let truncated = rows.len() > max_rows;
        rows.truncate(max_rows);
        Rows {
            rows,
            truncated,
            ran_in,
        }
    }
}

/// Runs a query that `guard::check` passed: in DuckDB when it has a DuckDB form (a query over
/// attachments only, where DuckDB joins and aggregates next to the data instead of Postgres
/// pulling every row through the foreign tables), else, or if DuckDB fails, in Postgres.
pub fn run(query: &guard::Checked, max_rows: usize, timeout: Duration) -> Result<Rows> {
    if let Some(duckdb) = &query.duckdb {
        let cap = max_rows.saturating_add(1) as u64;
        match run_in_duckdb(&duckdb.sql(cap), max_rows, timeout) {
            Ok(rows) => return Ok(rows),
            // Out of time is out of time in either engine.
            Err(e) if e.code == pgrx::PgSqlErrorCode::ERRCODE_QUERY_CANCELED => return Err(e),
            Err(e) => debug1!(
                "llm_sql.ask: DuckDB could not run the query, so Postgres runs it: {}",
                e.message
            ),
        }
    }
    run_read_only(&query.sql, max_rows, timeout)
}

/// `f` in a read-only subtransaction that is always rolled back, stopped after `timeout`.
fn read_only<T>(timeout: Duration, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let limit = Some((timeout, "llm_sql.ask_timeout"));
    subxact::run_within(OnSuccess::RollBack, limit, || {
        Spi::run("SET LOCAL transaction_read_only = on")?;
        f()
    })
}

/// The first column of each row, a jsonb, as a JSON value.
fn json_rows(
    result: pgrx::spi::SpiTupleTable,
) -> std::result::Result<Vec<Value>, pgrx::spi::Error> {
    result
        .map(|row| Ok(row.get::<JsonB>(1)?.map_or(Value::Null, |j| j.0)))
        .collect()
}

/// Runs DuckDB SQL from `pushdown::query` (the caller's privileges were checked there) as
/// `llm_sql.query_json` does, in the caller's DuckDB.
fn run_in_duckdb(sql: &str, max_rows: usize, timeout: Duration) -> Result<Rows> {
    let rows = read_only(timeout, || {
        Ok(Spi::connect(|client| {
            json_rows(client.select(
                "SELECT value FROM llm_sql.query_json($1) AS value",
                None,
                &[sql.into()],
            )?)
        })?)
    })?;
    Ok(Rows::capped(rows, max_rows, RanIn::DuckDb))
}

/// Runs a query that `guard::check` passed, as the calling role (its privileges and row-level
/// security apply), in a read-only subtransaction that is always rolled back, stopped after
/// `timeout` (error 57014 naming `llm_sql.ask_timeout`), keeping at most `max_rows` rows.
pub fn run_read_only(sql: &str, max_rows: usize, timeout: Duration) -> Result<Rows> {
    // The statement goes on its own lines so that a trailing comment cannot swallow the rest.
    let inner = format!("(\n{sql}\n) AS llm_sql_answer");
    let rows = sandbox::releasing_locks(|| {
        read_only(timeout, || {
            sandbox::enforced(|| answer_rows(&inner, max_rows))
        })
    })?;
    Ok(Rows::capped(rows, max_rows, RanIn::Postgres))
}

/// The rows of the checked query `inner` (a subquery with its alias), as JSON objects.
fn answer_rows(inner: &str, max_rows: usize) -> Result<Vec<Value>> {
    Ok(Spi::connect(|client| {
        // Result columns may share a name (a.name, b.name): they become name, name_1 so
        // that no value is lost when each row becomes a JSON object.
        let shape = client.select(&format!("SELECT * FROM {inner} LIMIT 0"), None, &[])?;
        let names: Vec<String> = (1..=shape.columns()?)
            .map(|i| shape.column_name(i))
            .collect::<std::result::Result<_, _>>()?;
        let aliases: Vec<String> = unique(names.iter().map(String::as_str))
            .iter()
            .map(|n| ident(n))
            .collect();
        let aliases = match aliases.is_empty() {
            true => String::new(),
            false => format!("({})", aliases.join(", ")),
        };
        let query = format!(
            "SELECT pg_catalog.to_jsonb(llm_sql_answer) FROM {inner}{aliases} LIMIT {}",
            max_rows.saturating_add(1)
        );
        json_rows(client.select(&query, None, &[])?)
    })?)
}
