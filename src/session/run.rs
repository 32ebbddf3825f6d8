//! Runs DuckDB SQL for the current role: split into statements by DuckDB's parser, each one
//! checked against the role's rights, run interruptibly; the rows of the last statement are
//! read chunk by chunk through a [`RowStream`].

use pgrx::PgSqlErrorCode;

use super::Session;
use crate::engine::errors::DuckClass;
use crate::engine::ffi::{DataChunk, DuckError, Param, Prepared, QueryResult, Statements, Vector};
use crate::engine::interrupt::interruptible;
use crate::engine::security;
use crate::engine::types::DuckType;
use crate::error::{Error, Result};
use crate::local::LocalScans;

/// Name and type of a result column.
pub struct Column {
    pub name: String,
    pub duck: DuckType,
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

/// Runs a blocking DuckDB call so that Postgres can interrupt it, and turns its failure into a
/// Postgres error. If Postgres itself asked for the interrupt (cancel, statement_timeout,
/// terminate) it raises its own error here, as it would anywhere else.
fn call<T>(session: &Session, f: impl FnOnce() -> Result<T, DuckError>) -> Result<T> {
    let target = session.conn().interrupt_target();
    let outcome = if session.serving_local_scans.get() {
        crate::local::pg_scan::serve_while(target, f)
    } else {
        interruptible(target, f)
    };
    outcome.map_err(|error| {
        pgrx::check_for_interrupts!();
        if DuckClass::of(&error) == DuckClass::Fatal {
            super::discard(&session.instance);
        }
        Error::from(error)
    })
}

/// Prepares statement `index` and binds the call's parameters to its `$1…$n`.
fn prepare_checked(
    session: &Session,
    statements: &Statements<'_>,
    index: usize,
    params: &[Param],
) -> Result<Prepared> {
    // Checked before binding: binding can already touch files and remote servers (read_csv
    // sniffs its file, a scanner connects).
    security::check_statement(session.instance.profile, statements.statement_type(index))?;
    let prepared = call(session, || statements.prepare(index))?;
    let mut bound = Vec::new();
    for name in prepared.parameter_names() {
        let number = name.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            Error::new(
                PgSqlErrorCode::ERRCODE_UNDEFINED_PARAMETER,
                format!("the DuckDB SQL has a parameter ${name}; only $1, $2, … can be given values"),
            )
        })?;
        let value = params.get(number - 1).ok_or_else(|| {
            Error::new(
                PgSqlErrorCode::ERRCODE_UNDEFINED_PARAMETER,
                format!(
                    "the DuckDB SQL uses ${number} but {} value(s) were given",
                    params.len()
                ),
            )
            .with_hint(
                "Pass the values after the SQL, e.g. llm_sql.query('SELECT … WHERE id = $1', 42): \
                 they are bound, never spliced into the text.",
            )
        })?;
        bound.push((number, value));
    }
    prepared.bind(&bound)?;
    Ok(prepared)
}

/// The highest `$n` a prepared statement uses.
fn highest_parameter(prepared: &Prepared) -> usize {
    prepared
        .parameter_names()
        .iter()
        .filter_map(|name| name.parse().ok())
        .max()
        .unwrap_or(0)
}

/// Every value given must be used: more values than the statements' parameters is an error.
fn check_all_used(params: &[Param], most_used: usize) -> Result<()> {
    if params.len() > most_used {
        return Err(Error::invalid_parameter(format!(
            "{} parameter value(s) were given but the DuckDB SQL uses {most_used}",
            params.len()
        )));
    }
    Ok(())
}

fn next_chunk(session: &Session, result: &mut QueryResult) -> Result<Option<DataChunk>> {
    let chunk = call(session, || result.next_chunk())?;
    pgrx::check_for_interrupts!();
    Ok(chunk)
}

/// Runs a statement to the end, discarding rows; returns the rows it changed.
fn run_to_end(session: &Session, prepared: &Prepared) -> Result<u64> {
    let mut result = call(session, || prepared.execute_streaming())?;
    if result.counts_changed_rows() {
        // INSERT/UPDATE/DELETE/COPY return one BIGINT row with the count.
        if let Some(chunk) = next_chunk(session, &mut result)? {
            let count = chunk.column(0);
            if chunk.len() > 0 && count.is_valid(0) {
                // SAFETY: the count column is a BIGINT and row 0 exists.
                return Ok(unsafe { count.value::<i64>(0) }.max(0) as u64);
            }
        }
        return Ok(0);
    }
    while next_chunk(session, &mut result)?.is_some() {}
    Ok(0)
}

/// The query after `EXPLAIN` or `EXPLAIN ANALYZE` at the start of `sql`, if any. (Only to find
/// the local tables it reads: what DuckDB runs is still `sql`, checked as a whole.)
fn explained_query(sql: &str) -> Option<&str> {
    let mut rest = sql.trim_start();
    let mut keyword = |word: &str| {
        let matched = rest
            .get(..word.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(word))
            && rest[word.len()..].starts_with(|c: char| c.is_ascii_whitespace());
        if matched {
            rest = rest[word.len()..].trim_start();
        }
        matched
    };
    if !keyword("EXPLAIN") {
        return None;
    }
    let _ = keyword("ANALYZE") || keyword("ANALYSE");
    Some(rest)
}

/// Parses `sql` into statements on the session's connection, after the checks, and sets up
/// the statement's reads of the local database (kept until the statement ends).
fn parse<'s>(session: &'s Session, sql: &str) -> Result<(Statements<'s>, LocalScans)> {
    check_sql_text(sql)?;
    // One parse into DuckDB's syntax tree serves the search for local tables (SQL that mentions
    // `pg`) and, for non-superusers, naming an attachment the role may not use.
    let profile = session.instance.profile;
    let tree = if profile != security::Profile::Superuser || crate::local::mentions_catalog(sql) {
        match security::syntax_tree(session.conn(), sql)? {
            // DuckDB serializes only SELECTs: for EXPLAIN, the tree of the query it explains.
            None => match explained_query(sql) {
                Some(query) => security::syntax_tree(session.conn(), query)?,
                None => None,
            },
            tree => tree,
        }
    } else {
        None
    };
    crate::attach::check_references(
        &session.instance.attached_aliases(),
        &security::catalogs(tree.as_ref()),
    )?;
    let local = crate::local::prepare(
        session.conn(),
        &session.instance.copies,
        !session.nested(),
        tree.as_ref(),
    )?;
    session.serving_local_scans.set(!local.is_empty());
    let statements = call(session, || session.conn().extract(sql))?;
    if statements.len() == 0 {
        return Err(Error::new(
            PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
            "the DuckDB SQL text has no statement",
        ));
    }
    Ok((statements, local))
}

/// The rows of a query, read one DuckDB chunk (up to 2048 rows) at a time.
///
/// Field order is drop order: the chunk before the result, the result before its statement,
/// and everything before the session that owns the connection.
pub struct RowStream {
    /// Released first: DuckDB threads still waiting for local rows give up before the result
    /// is destroyed.
    _local: LocalScans,
    /// Vectors of `chunk`; their lifetime is really that of `chunk` (see `next_chunk`).
    vectors: Vec<Vector<'static>>,
    /// Rows in `chunk` (asked once per chunk, not once per row).
    len: usize,
    chunk: Option<DataChunk>,
    result: QueryResult,
    _prepared: Prepared,
    session: Session,
    pub columns: Vec<Column>,
}

impl RowStream {
    /// Runs every statement of `sql` but the last to completion, and starts the last one;
    /// `params` are bound to each statement's `$1…$n`.
    pub fn open(sql: &str, params: &[Param]) -> Result<RowStream> {
        let session = Session::open()?;
        let (prepared, result, local) = {
            let (statements, local) = parse(&session, sql)?;
            let last = statements.len() - 1;
            let mut most_used = 0;
            for index in 0..last {
                let prepared = prepare_checked(&session, &statements, index, params)?;
                most_used = most_used.max(highest_parameter(&prepared));
                run_to_end(&session, &prepared)?;
            }
            let prepared = prepare_checked(&session, &statements, last, params)?;
            check_all_used(params, most_used.max(highest_parameter(&prepared)))?;
            let result = call(&session, || prepared.execute_streaming())?;
            (prepared, result, local)
        };
        let columns = (0..result.column_count())
            .map(|i| Column {
                name: result.column_name(i),
                duck: DuckType::from_logical(&result.column_type(i)),
            })
            .collect();
        Ok(RowStream {
            _local: local,
            vectors: Vec::new(),
            len: 0,
            chunk: None,
            result,
            _prepared: prepared,
            session,
            columns,
        })
    }

    /// Moves to the next chunk; false at the end of the rows.
    pub fn next_chunk(&mut self) -> Result<bool> {
        self.vectors.clear();
        self.len = 0;
        self.chunk = None;
        loop {
            let Some(chunk) = next_chunk(&self.session, &mut self.result)? else {
                return Ok(false);
            };
            if chunk.len() == 0 {
                continue;
            }
            // SAFETY: the vectors point into `chunk`, which is stored right below and only
            // dropped after `vectors` is cleared (here, or by field order on drop).
            self.vectors = (0..self.columns.len())
                .map(|c| unsafe {
                    std::mem::transmute::<Vector<'_>, Vector<'static>>(chunk.column(c))
                })
                .collect();
            self.len = chunk.len();
            self.chunk = Some(chunk);
            return Ok(true);
        }
    }

    /// Rows in the current chunk.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The columns of the current chunk.
    pub fn vectors(&self) -> &[Vector<'_>] {
        &self.vectors
    }
}

/// Runs every statement of `sql` (with `params` bound to their `$1…$n`) and returns the number
/// of rows they changed.
pub fn execute(sql: &str, params: &[Param]) -> Result<u64> {
    let session = Session::open()?;
    let (statements, _local) = parse(&session, sql)?;
    let (mut changed, mut most_used) = (0u64, 0);
    for index in 0..statements.len() {
        let prepared = prepare_checked(&session, &statements, index, params)?;
        most_used = most_used.max(highest_parameter(&prepared));
        if index + 1 == statements.len() {
            check_all_used(params, most_used)?;
        }
        changed = changed.saturating_add(run_to_end(&session, &prepared)?);
    }
    Ok(changed)
}

/// The result columns of `sql` (a single statement), without running it.
pub fn describe(sql: &str) -> Result<Vec<Column>> {
    let session = Session::open()?;
    let (statements, _local) = parse(&session, sql)?;
    if statements.len() != 1 {
        return Err(Error::invalid_parameter(format!(
            "expected a single DuckDB query, got {} statements",
            statements.len()
        )));
    }
    let prepared = prepare_checked(&session, &statements, 0, &[])?;
    Ok((0..prepared.column_count())
        .map(|i| Column {
            name: prepared.column_name(i),
            duck: DuckType::from_logical(&prepared.column_type(i)),
        })
        .collect())
}
