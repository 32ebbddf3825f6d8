//! Runs DuckDB SQL for the current role: split into statements by DuckDB's parser, each one
//! checked against the role's rights, run interruptibly, its rows handed over chunk by chunk.

use pgrx::PgSqlErrorCode;

use super::ffi::{Connection, DataChunk, DuckError, Prepared, QueryResult};
use super::interrupt::interruptible;
use super::types::DuckType;
use super::{security, Engine};
use crate::error::{DuckClass, Error, Result};

/// Name and type of a result column.
pub struct Column {
    pub name: String,
    pub duck: DuckType,
}

/// Receives the rows of the last statement of a query.
pub trait RowSink {
    /// Called once, before any chunk, with the result's columns.
    fn columns(&mut self, columns: Vec<Column>) -> Result<()>;
    fn chunk(&mut self, chunk: &DataChunk) -> Result<()>;
}

/// Upper bound on SQL text handed to DuckDB (a sanity limit, far above any real query).
const MAX_SQL_BYTES: usize = 64 * 1024 * 1024;

fn check_sql_text(sql: &str) -> Result<()> {
    if sql.trim().is_empty() {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
            "the DuckDB SQL text is empty",
        ));
    }
    if sql.len() > MAX_SQL_BYTES {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!(
                "the DuckDB SQL text is {} bytes; the limit is {MAX_SQL_BYTES}",
                sql.len()
            ),
        ));
    }
    Ok(())
}

/// Turns a DuckDB failure into a Postgres error. If Postgres itself asked for the interrupt
/// (cancel, statement_timeout, terminate) it raises its own error here, as it would anywhere.
fn fail(engine: &Engine, error: DuckError) -> Error {
    pgrx::check_for_interrupts!();
    if DuckClass::of(&error) == DuckClass::Fatal {
        super::discard(engine);
    }
    Error::from(error)
}

struct Runner<'e> {
    engine: &'e Engine,
    conn: &'e Connection,
}

impl Runner<'_> {
    fn call<T>(&self, f: impl FnOnce() -> Result<T, DuckError>) -> Result<T> {
        interruptible(self.conn.interrupt_target(), f).map_err(|e| fail(self.engine, e))
    }

    fn prepare_checked(
        &self,
        statements: &super::ffi::Statements<'_>,
        index: usize,
    ) -> Result<Prepared> {
        // Binding can already touch files and remote servers (e.g. read_csv sniffs the file).
        let prepared = self.call(|| statements.prepare(index))?;
        security::check_statement(self.engine.profile, prepared.statement_type())?;
        Ok(prepared)
    }

    fn execute(&self, prepared: &Prepared) -> Result<QueryResult> {
        self.call(|| prepared.execute_streaming())
    }

    fn next_chunk(&self, result: &mut QueryResult) -> Result<Option<DataChunk>> {
        let chunk = self.call(|| result.next_chunk())?;
        pgrx::check_for_interrupts!();
        Ok(chunk)
    }

    /// Runs a statement to the end, discarding rows; returns the rows it changed.
    fn run_to_end(&self, prepared: &Prepared) -> Result<u64> {
        let mut result = self.execute(prepared)?;
        let changes = result.rows_changed();
        if is_changed_rows(&result) {
            // INSERT/UPDATE/DELETE return one row with the count.
            if let Some(chunk) = self.next_chunk(&mut result)? {
                if chunk.len() > 0 && chunk.column(0).is_valid(0) {
                    // SAFETY: the count column is a BIGINT.
                    return Ok(unsafe { chunk.column(0).value::<i64>(0) }.max(0) as u64);
                }
            }
            return Ok(changes);
        }
        while self.next_chunk(&mut result)?.is_some() {}
        Ok(changes)
    }
}

fn is_changed_rows(result: &QueryResult) -> bool {
    result.return_type() == duckdb::ffi::duckdb_result_type_DUCKDB_RESULT_TYPE_CHANGED_ROWS
}

/// Opens (or reuses) the role's DuckDB and runs `f` with a connection and the parsed statements.
fn with_statements<T>(
    sql: &str,
    f: impl FnOnce(&Runner<'_>, &super::ffi::Statements<'_>) -> Result<T>,
) -> Result<T> {
    check_sql_text(sql)?;
    let engine = super::current()?;
    let session = engine.session()?;
    let runner = Runner {
        engine: &engine,
        conn: session.conn(),
    };
    let statements = runner.call(|| runner.conn.extract(sql))?;
    if statements.len() == 0 {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
            "the DuckDB SQL text has no statement",
        ));
    }
    f(&runner, &statements)
}

/// Runs every statement of `sql`; the rows of the last one go to `sink`, one chunk at a time.
pub fn query(sql: &str, sink: &mut dyn RowSink) -> Result<()> {
    with_statements(sql, |runner, statements| {
        let last = statements.len() - 1;
        for index in 0..last {
            let prepared = runner.prepare_checked(statements, index)?;
            runner.run_to_end(&prepared)?;
        }
        let prepared = runner.prepare_checked(statements, last)?;
        let mut result = runner.execute(&prepared)?;
        let columns = (0..result.column_count())
            .map(|i| Column {
                name: result.column_name(i),
                duck: DuckType::from_logical(&result.column_type(i)),
            })
            .collect();
        sink.columns(columns)?;
        while let Some(chunk) = runner.next_chunk(&mut result)? {
            sink.chunk(&chunk)?;
        }
        Ok(())
    })
}

/// Runs every statement of `sql` and returns the number of rows they changed.
pub fn execute(sql: &str) -> Result<u64> {
    with_statements(sql, |runner, statements| {
        let mut changed = 0u64;
        for index in 0..statements.len() {
            let prepared = runner.prepare_checked(statements, index)?;
            changed = changed.saturating_add(runner.run_to_end(&prepared)?);
        }
        Ok(changed)
    })
}

/// The result columns of `sql` (a single statement), without running it.
pub fn describe(sql: &str) -> Result<Vec<Column>> {
    with_statements(sql, |runner, statements| {
        if statements.len() != 1 {
            return Err(Error::invalid_parameter(format!(
                "expected a single DuckDB query, got {} statements",
                statements.len()
            )));
        }
        let prepared = runner.prepare_checked(statements, 0)?;
        Ok((0..prepared.column_count())
            .map(|i| Column {
                name: prepared.column_name(i),
                duck: DuckType::from_logical(&prepared.column_type(i)),
            })
            .collect())
    })
}
