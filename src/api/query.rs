//! DuckDB from SQL: llm_sql.query, query_json, create_view, execute, duckdb_settings, duckdb_reset.

use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use super::params;
use crate::engine::convert::Converter;
use crate::engine::ffi::Vector;
use crate::error::{required, Error, OrReport, Result};
use crate::executor::rows::{unique_names, RowShape};
use crate::executor::srf::Materialize;
use crate::quote;
use crate::session::run::{self, RowStream};

/// Runs `sql` and stores its rows in a tuplestore, as llm_sql.query rows (`json = false`) or
/// llm_sql.query_json rows. (In FROM, the streaming scan in `executor::duckdb_scan` usually runs instead.)
///
/// # Safety
/// `fcinfo` must be the call info of the running set-returning function.
unsafe fn materialize(fcinfo: pg_sys::FunctionCallInfo, json: bool) -> Result<()> {
    let sql = required(text_arg(fcinfo, 0), "sql")?;
    // SAFETY: fcinfo is this call's (params after the SQL, if the overload has them).
    let params = unsafe { params::variadic(fcinfo, 1)? };
    // SAFETY: fcinfo is this call's.
    let mut out = unsafe { Materialize::start(fcinfo, json.then_some(pg_sys::JSONBOID))? };
    let mut stream = RowStream::open(&sql, &params)?;
    // SAFETY: out.tupdesc is the descriptor Materialize set up.
    let mut shape = unsafe { RowShape::plan(&stream.columns, out.tupdesc, json)? };
    let width = out.natts();
    let (mut values, mut nulls) = (vec![Datum::from(0); width], vec![false; width]);
    while stream.next_chunk()? {
        out.in_rows_context(|out| {
            for row in 0..stream.len() {
                shape.fill(stream.vectors(), row, &mut values, &mut nulls)?;
                out.put(&mut values, &mut nulls);
            }
            Ok::<_, Error>(())
        })?;
    }
    Ok(())
}

fn text_arg(fcinfo: pg_sys::FunctionCallInfo, index: usize) -> Option<String> {
    // SAFETY: reads argument `index` of the running function, declared as text in SQL.
    unsafe { pgrx::fcinfo::pg_getarg::<String>(fcinfo, index) }
}

/// `llm_sql.query(sql text) RETURNS SETOF record`
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn llm_sql_query(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    // SAFETY: called by Postgres as a set-returning function.
    unsafe { materialize(fcinfo, false) }.or_report();
    Datum::from(0)
}

finfo_v1!(pg_finfo_llm_sql_query);

/// `llm_sql.query_json(sql text) RETURNS SETOF jsonb`
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn llm_sql_query_json(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    // SAFETY: called by Postgres as a set-returning function.
    unsafe { materialize(fcinfo, true) }.or_report();
    Datum::from(0)
}

finfo_v1!(pg_finfo_llm_sql_query_json);

pgrx::extension_sql!(
    r#"
CREATE FUNCTION llm_sql.query(sql text) RETURNS SETOF record
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'llm_sql_query';
COMMENT ON FUNCTION llm_sql.query(text) IS
    'Runs DuckDB SQL and returns its rows; call with a column definition list: AS t(a int, b text)';
CREATE FUNCTION llm_sql.query_json(sql text) RETURNS SETOF jsonb
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'llm_sql_query_json';
COMMENT ON FUNCTION llm_sql.query_json(text) IS
    'Runs DuckDB SQL and returns each row as a jsonb object keyed by column name';
CREATE FUNCTION llm_sql.query(sql text, VARIADIC params "any") RETURNS SETOF record
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'llm_sql_query';
COMMENT ON FUNCTION llm_sql.query(text, "any") IS
    'Runs DuckDB SQL with the values after it bound to $1, $2, ...; call with a column definition list';
CREATE FUNCTION llm_sql.query_json(sql text, VARIADIC params "any") RETURNS SETOF jsonb
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'llm_sql_query_json';
COMMENT ON FUNCTION llm_sql.query_json(text, "any") IS
    'Runs DuckDB SQL with the values after it bound to $1, $2, ...; one jsonb object per row';
CREATE FUNCTION llm_sql.execute(sql text, VARIADIC params "any") RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'llm_sql_execute_with_params';
COMMENT ON FUNCTION llm_sql.execute(text, "any") IS
    'Runs DuckDB statements with the values after them bound to $1, $2, ...; returns the rows changed';
"#,
    name = "query_functions",
);

/// Creates a Postgres view over a DuckDB query, typed from DuckDB's result schema.
#[pg_extern(volatile, parallel_unsafe)]
fn create_view(
    name: Option<&str>,
    sql: Option<&str>,
    or_replace: default!(Option<bool>, false),
) -> String {
    create_view_impl(name, sql, or_replace).or_report()
}

pub fn create_view_impl(
    name: Option<&str>,
    sql: Option<&str>,
    or_replace: Option<bool>,
) -> Result<String> {
    let name = required(name, "name")?;
    let sql = required(sql, "sql")?;
    let or_replace = required(or_replace, "or_replace")?;
    let definitions = column_definitions(sql)?;
    let qualified = Spi::get_one_with_args::<String>(
        "SELECT string_agg(quote_ident(part), '.') FROM unnest(parse_ident($1)) AS part",
        &[name.into()],
    )
    .map_err(|e| Error::invalid_parameter(format!("invalid view name \"{name}\": {e}")))?
    .ok_or_else(|| Error::invalid_parameter(format!("invalid view name \"{name}\"")))?;
    let statement = format!(
        "CREATE {}VIEW {qualified} AS SELECT * FROM llm_sql.query({}) AS duckdb({})",
        if or_replace { "OR REPLACE " } else { "" },
        quote::pg_literal(sql)?,
        definitions.join(", ")
    );
    crate::subxact::run(crate::subxact::OnSuccess::Keep, || {
        Ok(Spi::run(&statement)?)
    })
    .map_err(|e| match e.code {
        // CREATE OR REPLACE VIEW keeps the view's columns and may only add some at the end.
        PgSqlErrorCode::ERRCODE_INVALID_TABLE_DEFINITION if or_replace => e.with_hint(format!(
            "The query's columns are not those of {qualified} plus new ones at the end. \
                 DROP VIEW {qualified} first (its grants and dependent views go with it), or \
                 create the view under another name."
        )),
        _ => e,
    })?;
    Spi::get_one_with_args::<String>(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass",
        &[qualified.into()],
    )
    .map_err(|e| Error::internal(e.to_string()))?
    .ok_or_else(|| Error::internal("the view was not created"))
}

/// `"name" type` for each result column of a DuckDB query, typed as the natural Postgres type
/// of its DuckDB type (as `create_view` and `import_schema` declare them).
pub fn column_definitions(sql: &str) -> Result<Vec<String>> {
    let columns = run::describe(sql)?;
    if columns.is_empty() {
        return Err(Error::invalid_parameter(
            "the DuckDB statement returns no columns to make a relation of",
        ));
    }
    let names = unique_names(&columns);
    let mut definitions = Vec::with_capacity(columns.len());
    for (i, (column, name)) in columns.into_iter().zip(&names).enumerate() {
        let converter = Converter::new(column.duck, None, name, i + 1)?;
        definitions.push(format!(
            "{} {}",
            quote::ident(name),
            converter.natural.sql_name()
        ));
    }
    Ok(definitions)
}

/// Runs DuckDB statements (DDL, DML, …) and returns the number of rows they changed.
#[pg_extern(volatile, parallel_unsafe)]
fn execute(sql: Option<&str>) -> i64 {
    let run = || run::execute(required(sql, "sql")?, &[]);
    i64::try_from(run().or_report()).unwrap_or(i64::MAX)
}

/// `llm_sql.execute(sql text, VARIADIC params "any") RETURNS bigint`
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn llm_sql_execute_with_params(
    fcinfo: pg_sys::FunctionCallInfo,
) -> Datum {
    let run = || {
        let sql = required(text_arg(fcinfo, 0), "sql")?;
        // SAFETY: declared with VARIADIC "any" after the SQL.
        let params = unsafe { params::variadic(fcinfo, 1)? };
        run::execute(&sql, &params)
    };
    let changed = i64::try_from(run().or_report()).unwrap_or(i64::MAX);
    Datum::from(changed)
}

finfo_v1!(pg_finfo_llm_sql_execute_with_params);

/// The effective DuckDB settings of this backend (for the current role's instance).
#[pg_extern(volatile, parallel_unsafe)]
fn duckdb_settings() -> TableIterator<'static, (name!(name, String), name!(value, Option<String>))>
{
    let collect = || -> Result<Vec<(String, Option<String>)>> {
        let mut stream = RowStream::open(
            "SELECT name, value FROM duckdb_settings() ORDER BY name",
            &[],
        )?;
        let mut rows = Vec::new();
        while stream.next_chunk()? {
            let [names, values] = stream.vectors() else {
                unreachable!("two columns")
            };
            for row in 0..stream.len() {
                // SAFETY: both columns are VARCHAR; validity is checked first.
                let text = |v: &Vector<'_>| {
                    v.is_valid(row)
                        .then(|| String::from_utf8_lossy(unsafe { v.bytes(row) }).into_owned())
                };
                rows.push((text(names).unwrap_or_default(), text(values)));
            }
        }
        Ok(rows)
    };
    TableIterator::new(collect().or_report())
}

/// Drops this backend's DuckDB; the next call creates a fresh one with the current settings.
#[pg_extern(volatile, parallel_unsafe)]
fn duckdb_reset() {
    crate::session::reset();
}
