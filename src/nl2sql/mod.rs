//! Text to SQL (`llm_sql.ask` and friends): finding the SQL in a model's reply (`extract`),
//! deciding whether it may run (`guard`), and running it with the caller's rights, read-only,
//! under a time limit and a row cap (`run_read_only`).

pub mod ask;
pub mod context;
pub mod extract;
pub mod guard;
pub mod prompt;

use std::time::Duration;

use pgrx::datum::JsonB;
use pgrx::prelude::*;
use serde_json::Value;

use crate::error::Result;
use crate::subxact::{self, OnSuccess};

/// The rows of an answer, each a JSON object keyed by column name.
pub struct Rows {
    pub rows: Vec<Value>,
    /// More rows than the cap existed.
    pub truncated: bool,
}

/// Runs a query that `guard::check` passed, as the calling role (its privileges and row-level
/// security apply), in a read-only subtransaction that is always rolled back, stopped after
/// `timeout` (error 57014 naming `llm_sql.ask_timeout`), keeping at most `max_rows` rows.
pub fn run_read_only(sql: &str, max_rows: usize, timeout: Duration) -> Result<Rows> {
    // The statement goes on its own lines so that a trailing comment cannot swallow the rest.
    let wrapped = format!(
        "SELECT pg_catalog.to_jsonb(llm_sql_answer) FROM (\n{sql}\n) AS llm_sql_answer LIMIT {}",
        max_rows.saturating_add(1)
    );
    let limit = Some((timeout, "llm_sql.ask_timeout"));
    let mut rows = subxact::run_within(OnSuccess::RollBack, limit, || {
        Spi::run("SET LOCAL transaction_read_only = on")?;
        Ok(Spi::connect(|client| {
            let mut rows = Vec::new();
            for row in client.select(&wrapped, None, &[])? {
                rows.push(row.get::<JsonB>(1)?.map_or(Value::Null, |j| j.0));
            }
            Ok::<_, pgrx::spi::Error>(rows)
        })?)
    })?;
    let truncated = rows.len() > max_rows;
    rows.truncate(max_rows);
    Ok(Rows { rows, truncated })
}
